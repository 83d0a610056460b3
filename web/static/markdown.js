// Markdown-style typing in the composer, turned into the protocol's
// message entities: **bold**, _italic_ (or *italic*), __underline__,
// ~~strikethrough~~, ||spoiler||, `code` and ```lang code blocks```.
// The markers are removed from the text; offsets and lengths count UTF-16
// code units, as JavaScript strings and the protocol do. What does not
// close is left as typed.

const MARKS = [
  ['```', 'pre'], ['**', 'bold'], ['__', 'underline'], ['~~', 'strikethrough'], ['||', 'spoiler'],
  ['`', 'code'], ['_', 'italic'], ['*', 'italic'],
];
const word = (c) => c !== undefined && /[\p{L}\p{N}_]/u.test(c);

export function parseMarkdown(src) {
  let out = '';
  const entities = [];
  const walk = (s) => {
    let i = 0;
    while (i < s.length) {
      const mk = MARKS.find(([m]) => s.startsWith(m, i));
      if (mk) {
        const [m, type] = mk;
        const single = m === '_' || m === '*';
        // A single _ or * inside a word (snake_case, 2*3*4) is not a marker.
        let j = single && word(s[i - 1]) ? -1 : s.indexOf(m, i + m.length);
        while (single && j > 0 && word(s[j + 1])) j = s.indexOf(m, j + 1);
        if (j > i + m.length) {
          let inner = s.slice(i + m.length, j);
          const start = out.length;
          const e = { type, offset: start, length: 0 };
          if (type === 'pre') {
            const nl = inner.indexOf('\n');
            if (nl > 0 && /^[\w+#.-]{1,32}$/.test(inner.slice(0, nl))) {
              e.language = inner.slice(0, nl);
              inner = inner.slice(nl + 1);
            }
          }
          if (type === 'pre' || type === 'code') out += inner; else walk(inner);
          e.length = out.length - start;
          if (e.length > 0) entities.push(e);
          i = j + m.length;
          continue;
        }
      }
      out += s[i];
      i++;
    }
  };
  walk(src);
  entities.sort((a, b) => a.offset - b.offset || b.length - a.length);
  return { text: out, entities };
}

// wrapSelection puts marker around the selection of a textarea (or, with
// none, places the caret between a pair of them), as Ctrl+B does.
export function wrapSelection(ta, marker) {
  const { selectionStart: a, selectionEnd: b, value: v } = ta;
  ta.value = v.slice(0, a) + marker + v.slice(a, b) + marker + v.slice(b);
  ta.selectionStart = a + marker.length;
  ta.selectionEnd = b + marker.length;
  ta.focus();
}
