{
  "targets": [
    {
      "target_name": "shaper_native",
      "sources": ["src/native/addon.c", "src/native/engine.c", "src/native/relay.c"],
      "cflags": ["-std=gnu11", "-Wall", "-Wextra", "-Werror", "-fvisibility=hidden"],
      "cflags!": ["-Wno-unused-parameter"]
    }
  ]
}
