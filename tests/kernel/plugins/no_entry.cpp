// A shared library that is not a Parley plugin: it exports no entry symbol.
extern "C" __attribute__((visibility("default"))) int not_a_parley_plugin() {
  return 42;
}
