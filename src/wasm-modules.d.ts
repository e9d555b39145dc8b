// A .wasm import is a compiled module on workerd (and with bundlers configured for it).
declare module '*.wasm' {
  const module: WebAssembly.Module;
  export default module;
}
