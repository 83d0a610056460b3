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

// formatCall: a call's record from the reader's side ("Outgoing call, 3:42").
export function formatCall(outgoing, video, outcome, durationMs) {
  const kind = video ? 'video call' : 'call';
  if (outcome === 'ended') return `${outgoing ? 'Outgoing' : 'Incoming'} ${kind}, ${clock(durationMs)}`;
  if (outcome === 'declined') return outgoing ? `Declined ${kind}` : `You declined a ${kind}`;
  if (outcome === 'busy' && outgoing) return `Busy: ${kind} not answered`;
  return `${outgoing ? 'Cancelled' : 'Missed'} ${kind}`;
}

// clock: "0:07", "3:42", "1:02:09".
export function clock(ms) {
  const s = Math.floor(ms / 1000);
  const two = (n) => String(n).padStart(2, '0');
  if (s >= 3600) return `${Math.floor(s / 3600)}:${two(Math.floor(s / 60) % 60)}:${two(s % 60)}`;
  return `${Math.floor(s / 60)}:${two(s % 60)}`;
}
