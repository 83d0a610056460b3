// How the client puts numbers and messages into words. This mirrors the
// Go package format (used by the herald CLI); both are checked against
// format/testdata/cases.json, so the two clients say the same thing.

const UNITS = ['KiB', 'MiB', 'GiB', 'TiB'];

// formatSize: "512 B", "53.2 KiB", "4.8 MiB".
export function formatSize(n) {
  if (n < 1024) return `${n} B`;
  let v = n;
  let u = -1;
  while (u < UNITS.length - 1 && v >= 1023.95) {
    v /= 1024;
    u++;
  }
  return `${v.toFixed(1)} ${UNITS[u]}`;
}

// formatNumber: "1,234,567".
export function formatNumber(n) {
  const s = String(Math.abs(Math.trunc(n)));
  let out = '';
  for (let i = 0; i < s.length; i++) {
    if (i > 0 && (s.length - i) % 3 === 0) out += ',';
    out += s[i];
  }
  return (n < 0 ? '-' : '') + out;
}

// formatCount: "1 view", "3 views"; many defaults to one + "s".
export function formatCount(n, one, many = '') {
  return `${formatNumber(n)} ${n === 1 || n === -1 ? one : many || one + 's'}`;
}

// formatPreview: "alice: hi"; a service message stands alone.
export function formatPreview(from, text, service) {
  return service || !from ? text : `${from}: ${text}`;
}
