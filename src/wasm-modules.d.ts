// A .wasm import is a compiled module on workerd (and with bundlers configured for it).
declare module '*.wasm' {
  const module: WebAssembly.Module;
  export default module;
}

// The bytes of a wasm build, inlined by the build (tsup.config.ts) into the `deltaprop/inline` entry.
declare module 'deltaprop-inline-wasm:*' {
  const bytes: Uint8Array<ArrayBuffer>;
  export default bytes;
}
