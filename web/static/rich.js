// Message text with its entities (a bot's bold, italic, code, links …) as
// DOM nodes. The text only ever becomes text nodes: entities choose the
// elements around it, and a link's address must be http(s) or mailto.
// Offsets and lengths count UTF-16 code units, as JavaScript strings do.

const TAGS = {
  bold: 'strong', italic: 'em', underline: 'u', strikethrough: 's',
  code: 'code', pre: 'pre', spoiler: 'span', blockquote: 'blockquote',
  text_link: 'a', url: 'a', email: 'a',
};

const safeURL = (u) => (/^(https?:\/\/|mailto:)/i.test(u) ? u : '');

function wrap(e, seg) {
  const tag = TAGS[e.type];
  if (!tag) return null;
  const n = document.createElement(tag);
  if (e.type === 'spoiler') n.className = 'spoiler';
  if (tag === 'a') {
    const href = safeURL(e.type === 'text_link' ? e.url || '' : e.type === 'email' ? 'mailto:' + seg : /^https?:\/\//i.test(seg) ? seg : 'https://' + seg);
    if (!href) return null;
    n.href = href;
    n.rel = 'noopener noreferrer nofollow';
    n.target = '_blank';
  }
  return n;
}

// richText returns a fragment: text, wrapped per its entities.
export function richText(text, entities) {
  const frag = document.createDocumentFragment();
  // Protobuf JSON leaves out zeros: an entity at the start has no offset.
  const es = (entities || []).map((e) => ({ ...e, offset: e.offset || 0, length: e.length || 0 })).filter((e) => e.offset >= 0 && e.length > 0 && e.offset + e.length <= text.length && TAGS[e.type]);
  if (!es.length) {
    frag.append(text);
    return frag;
  }
  const cuts = [...new Set([0, text.length, ...es.flatMap((e) => [e.offset, e.offset + e.length])])].sort((a, b) => a - b);
  for (let i = 0; i + 1 < cuts.length; i++) {
    const [a, b] = [cuts[i], cuts[i + 1]];
    const seg = text.slice(a, b);
    let node = document.createTextNode(seg);
    for (const e of es) {
      if (e.offset > a || e.offset + e.length < b) continue;
      const w = wrap(e, text.slice(e.offset, e.offset + e.length));
      if (!w) continue;
      w.append(node);
      node = w;
    }
    frag.append(node);
  }
  return frag;
}
