{
  "targets": [
    {
      "target_name": "shaper_native",
      "sources": ["src/native/addon.c", "src/native/engine.c"],
      "cflags": ["-std=gnu11", "-Wall", "-Wextra", "-Werror"],
      "cflags!": ["-Wno-unused-parameter"]
    }
  ]
}
