// Starts compiling the engine (herald.wasm) the moment the page's head is
// read, while its bytes still arrive: WebAssembly.compileStreaming
// compiles each part as it lands, so by the last byte little compiling is
// left. app.js instantiates the result; it runs later (after its imports),
// and without this file the compilation could start only then. The server
// names the engine by its content (herald.HASH.wasm, cached for good) in
// the preload link, whose download this fetch takes over; herald.wasm is
// the same module, revalidated. Should app.js have run first, it started
// the same itself.
if (!globalThis.heraldModule) {
  const link = document.querySelector('link[rel="preload"][as="fetch"]');
  globalThis.heraldModule = WebAssembly.compileStreaming(fetch(link ? link.getAttribute('href') : 'herald.wasm'));
  // app.js handles a failure when it awaits this; until then it is not an
  // unhandled rejection.
  globalThis.heraldModule.catch(() => {});
}
