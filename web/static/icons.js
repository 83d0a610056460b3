// The page's icons: small line drawings (24×24, stroked in the text's
// colour) shipped with the page, so they show on systems without an
// emoji font. An icon is decoration: the words beside it, or the
// aria-label of its control, say what it means.

const NS = 'http://www.w3.org/2000/svg';

const PATHS = {
  new: 'M12 5v14M5 12h14',
  chat: 'M4 20h4L19 9l-4-4L4 16v4zM14 6l4 4',
  group: 'M9 11a3.5 3.5 0 1 0 0-7 3.5 3.5 0 0 0 0 7zM2.5 20c0-3.6 2.9-6 6.5-6s6.5 2.4 6.5 6M16 4.3a3.5 3.5 0 0 1 0 6.4M18 14.2c2.1.7 3.5 2.8 3.5 5.8',
  channel: 'M3 10v4h3l7 4V6l-7 4H3zM16 9a4 4 0 0 1 0 6M18.5 6.5a7.5 7.5 0 0 1 0 11',
  search: 'M10.5 17a6.5 6.5 0 1 0 0-13 6.5 6.5 0 0 0 0 13zM15.5 15.5L21 21',
  lock: 'M6 11h12v10H6zM8.5 11V7.5a3.5 3.5 0 0 1 7 0V11',
  muted: 'M6 17h12l-1.5-2v-5a4.5 4.5 0 0 0-9 0v5L6 17zM10 20a2 2 0 0 0 4 0M4 4l16 16',
  attach: 'M20 11.5l-8 8a5 5 0 0 1-7-7l8.5-8.5a3.3 3.3 0 0 1 4.7 4.7l-8.5 8.5a1.7 1.7 0 0 1-2.4-2.4L15 7',
  timer: 'M12 21a8 8 0 1 0 0-16 8 8 0 0 0 0 16zM12 9v4l2.5 2.5M10 2h4',
  file: 'M6 3h8l4 4v14H6zM14 3v4h4',
  photo: 'M4 5h16v14H4zM4 16l5-5 4 4 3-3 4 4M15.5 8.5v.01',
  video: 'M3 6h12v12H3zM15 10l6-3v10l-6-3',
  audio: 'M9 18V5l11-2v13M9 18a3 3 0 1 1-6 0 3 3 0 0 1 6 0zM20 16a3 3 0 1 1-6 0 3 3 0 0 1 6 0z',
  voice: 'M12 14a3 3 0 0 0 3-3V6a3 3 0 0 0-6 0v5a3 3 0 0 0 3 3zM6 11a6 6 0 0 0 12 0M12 17v4',
  phone: 'M5 4h4l2 5-2.5 1.5a11 11 0 0 0 5 5L15 13l5 2v4a2 2 0 0 1-2 2A16 16 0 0 1 3 6a2 2 0 0 1 2-2z',
  views: 'M2 12s3.5-6.5 10-6.5S22 12 22 12s-3.5 6.5-10 6.5S2 12 2 12zM12 14.5a2.5 2.5 0 1 0 0-5 2.5 2.5 0 0 0 0 5z',
};

// icon returns a fresh <svg> for name, hidden from assistive technology.
export function icon(name) {
  const svg = document.createElementNS(NS, 'svg');
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('class', `icon icon-${name}`);
  svg.setAttribute('aria-hidden', 'true');
  svg.setAttribute('focusable', 'false');
  const p = document.createElementNS(NS, 'path');
  p.setAttribute('d', PATHS[name] || PATHS.file);
  svg.append(p);
  return svg;
}

// fileIcon names the icon for a file of this kind.
export const fileIcon = (kind) => ({ photo: 'photo', video: 'video', audio: 'audio', voice: 'voice' }[kind] || 'file');

// fillIcons puts the icon named by data-icon into each such element of the page.
export function fillIcons(root = document) {
  for (const e of root.querySelectorAll('[data-icon]')) e.replaceChildren(icon(e.dataset.icon));
}
