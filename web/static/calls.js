// 1:1 voice and video calls. Herald carries the signalling (calls.start,
// calls.answer, calls.candidate, calls.hangup and the CallEvents the
// engine delivers as 'call' events); the media flows between the two
// browsers over WebRTC, encrypted by DTLS-SRTP. See docs/CALLS.md.

import { clock } from './format.js';

const $ = (id) => document.getElementById(id);

let api = null;    // {call(method, params), peerName(chatId), notice(text)}
let cur = null;    // the one call on this page, or null

// initCalls wires the call panel's buttons; deps gives the page's
// protocol call and how to name a chat's other person.
export function initCalls(deps) {
  api = deps;
  $('voice-call-btn').addEventListener('click', () => placeCall(false));
  $('video-call-btn').addEventListener('click', () => placeCall(true));
  $('call-accept').addEventListener('click', accept);
  $('call-decline').addEventListener('click', decline);
  $('call-hangup').addEventListener('click', hangUp);
  $('call-mute').addEventListener('click', () => toggle('audio', 'call-mute'));
  $('call-camera').addEventListener('click', () => toggle('video', 'call-camera'));
  $('call-screen').addEventListener('click', shareScreen);
}

// inCall reports whether a call is ringing or on.
export function inCall() { return cur !== null; }

// placeCall calls the open direct chat's other person.
async function placeCall(video) {
  const chatId = api.openDirectChat();
  if (!chatId || cur) return;
  cur = newCall({ chatId, video, outgoing: true, peer: api.peerName(chatId) });
  show('Calling…');
  try {
    await startMedia(video);
    const offer = await cur.pc.createOffer();
    await cur.pc.setLocalDescription(offer);
    const info = await api.call('calls.start', { peer: { chat_id: chatId }, video, sdp: offer.sdp });
    if (!cur) return; // hung up meanwhile
    cur.id = info.call_id;
    show('Ringing…');
    for (const c of cur.outbox.splice(0)) sendCandidate(c);
  } catch (err) {
    end(err.message || String(err));
  }
}

// onCallEvent handles one signalling step pushed by the server.
export async function onCallEvent(ev) {
  try {
    if (ev.kind === 'incoming') return incoming(ev);
    if (!cur || ev.call_id !== cur.id) return;
    switch (ev.kind) {
      case 'answer':
        await cur.pc.setRemoteDescription({ type: 'answer', sdp: ev.sdp });
        await flushRemote();
        connected();
        break;
      case 'accepted':
        // Another of this person's devices took it: stop ringing here.
        if (cur.state === 'ringing') end('Answered on another device');
        break;
      case 'ice':
        cur.inbox.push(JSON.parse(ev.candidate));
        if (cur.pc && cur.pc.remoteDescription) await flushRemote();
        break;
      case 'ended':
        end(ev.outcome === 'declined' ? 'Call declined' : ev.outcome === 'missed' && cur.outgoing ? 'No answer' : 'Call ended');
        break;
    }
  } catch (err) {
    console.error('call', err);
  }
}

function incoming(ev) {
  if (cur) return; // busy here; the server already refuses a second call
  cur = newCall({ chatId: ev.chat_id, video: ev.video, outgoing: false, peer: ev.from });
  cur.id = ev.call_id;
  cur.offer = ev.sdp;
  cur.state = 'ringing';
  show(`${ev.video ? 'Video call' : 'Call'} from @${ev.from}`);
}

async function accept() {
  if (!cur || cur.state !== 'ringing') return;
  cur.state = 'answering';
  show('Connecting…');
  try {
    await startMedia(cur.video);
    await cur.pc.setRemoteDescription({ type: 'offer', sdp: cur.offer });
    const answer = await cur.pc.createAnswer();
    await cur.pc.setLocalDescription(answer);
    await api.call('calls.answer', { call_id: cur.id, sdp: answer.sdp });
    if (!cur) return;
    connected();
    await flushRemote();
    for (const c of cur.outbox.splice(0)) sendCandidate(c);
  } catch (err) {
    const id = cur && cur.id;
    end(err.message || String(err));
    if (id) api.call('calls.hangup', { call_id: id }).catch(() => {});
  }
}

async function decline() {
  if (!cur) return;
  const id = cur.id;
  end('');
  await api.call('calls.decline', { call_id: id }).catch(() => {});
}

async function hangUp() {
  if (!cur) return;
  const id = cur.id;
  end('Call ended');
  if (id) await api.call('calls.hangup', { call_id: id }).catch(() => {});
}

function newCall(c) {
  return { ...c, id: '', state: 'calling', pc: null, local: null, outbox: [], inbox: [], started: 0, timer: 0, screen: null };
}

// startMedia opens the microphone (and camera) and the peer connection,
// through the server's relay when it runs one (calls.ice_servers).
async function startMedia(video) {
  const [local, ice] = await Promise.all([
    navigator.mediaDevices.getUserMedia({ audio: true, video }),
    api.call('calls.ice_servers', {}).catch(() => ({})),
  ]);
  if (!cur) { local.getTracks().forEach((t) => t.stop()); throw new Error('the call ended'); }
  cur.local = local;
  $('call-local').srcObject = local;
  const iceServers = (ice.servers || []).map((s) => ({ urls: s.urls, username: s.username, credential: s.credential }));
  const pc = new RTCPeerConnection({ iceServers });
  cur.pc = pc;
  for (const t of local.getTracks()) pc.addTrack(t, local);
  pc.onicecandidate = (e) => {
    if (!e.candidate || !cur) return;
    // The callee's go out once its answer is in: before, the server
    // does not know which of its devices is in the call.
    if (cur.id && (cur.outgoing || cur.state === 'on')) sendCandidate(e.candidate);
    else cur.outbox.push(e.candidate);
  };
  pc.ontrack = (e) => {
    $('call-remote').srcObject = e.streams[0];
  };
  pc.onconnectionstatechange = () => {
    if (pc.connectionState === 'failed' && cur && cur.pc === pc) hangUp();
  };
}

function sendCandidate(c) {
  api.call('calls.candidate', { call_id: cur.id, candidate: JSON.stringify(c.toJSON()) }).catch(() => {});
}

async function flushRemote() {
  for (const c of cur.inbox.splice(0)) await cur.pc.addIceCandidate(c);
}

function connected() {
  cur.state = 'on';
  cur.started = Date.now();
  const tick = () => { if (cur && cur.state === 'on') $('call-status').textContent = `@${cur.peer} · ${clock(Date.now() - cur.started)}`; };
  tick();
  cur.timer = setInterval(tick, 1000);
  render();
}

function toggle(kind, btn) {
  if (!cur || !cur.local) return;
  const tracks = kind === 'audio' ? cur.local.getAudioTracks() : cur.local.getVideoTracks();
  const off = $(btn).getAttribute('aria-pressed') !== 'true';
  for (const t of tracks) t.enabled = !off;
  $(btn).setAttribute('aria-pressed', off ? 'true' : 'false');
}

// shareScreen sends the screen instead of the camera, and back.
async function shareScreen() {
  if (!cur || !cur.pc || !cur.video) return;
  const sender = cur.pc.getSenders().find((s) => s.track && s.track.kind === 'video');
  if (!sender) return;
  if (cur.screen) {
    cur.screen.getTracks().forEach((t) => t.stop());
    cur.screen = null;
    await sender.replaceTrack(cur.local.getVideoTracks()[0]);
    $('call-screen').setAttribute('aria-pressed', 'false');
    return;
  }
  try {
    cur.screen = await navigator.mediaDevices.getDisplayMedia({ video: true });
    const track = cur.screen.getVideoTracks()[0];
    track.onended = () => { if (cur && cur.screen) shareScreen(); };
    await sender.replaceTrack(track);
    $('call-screen').setAttribute('aria-pressed', 'true');
  } catch { /* the person chose not to share */ }
}

function show(status) {
  $('call').hidden = false;
  $('call-status').textContent = status;
  render();
}

function render() {
  const ringing = cur && cur.state === 'ringing';
  $('call-accept').hidden = !ringing;
  $('call-decline').hidden = !ringing;
  $('call-hangup').hidden = !cur || ringing;
  const on = cur && cur.state === 'on';
  $('call-mute').hidden = !on;
  $('call-camera').hidden = !on || !cur.video;
  $('call-screen').hidden = !on || !cur.video || !navigator.mediaDevices.getDisplayMedia;
  $('call-videos').hidden = !cur || !cur.video;
}

// end tears the call down on this page and says why for a moment.
function end(why) {
  if (!cur) return;
  clearInterval(cur.timer);
  if (cur.pc) cur.pc.close();
  for (const s of [cur.local, cur.screen]) if (s) s.getTracks().forEach((t) => t.stop());
  cur = null;
  $('call-local').srcObject = null;
  $('call-remote').srcObject = null;
  for (const b of ['call-mute', 'call-camera', 'call-screen']) $(b).setAttribute('aria-pressed', 'false');
  render();
  $('call').hidden = true;
  if (why) api.notice(why);
}
