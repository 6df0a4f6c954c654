{
  "targets": [
    {
      "target_name": "podserve",
      "sources": ["native/addon.c", "native/seqpacket.c", "native/mount.c", "native/memory.cc"],
      "cflags": ["-O2", "-Wall", "-Wextra"],
      "cflags_cc": ["-O2", "-Wall"]
    }
  ]
}
