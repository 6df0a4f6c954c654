{
  "targets": [
    {
      "target_name": "podserve",
      "sources": ["native/addon.c", "native/seqpacket.c", "native/mount.c"],
      "cflags": ["-O2", "-Wall", "-Wextra"]
    }
  ]
}
