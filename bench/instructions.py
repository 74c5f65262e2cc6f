#!/usr/bin/env python3
"""The two halves of bench/instructions.sh that are easier in Python.

  instructions.py replay HOST:PORT PATH HEADERS_FILE COUNT
      Sends COUNT requests `GET PATH` over one keep-alive connection, each
      with the next line of HEADERS_FILE as its Authorization header, one at
      a time (each answer read before the next request), and fails unless
      every answer is 200.

  instructions.py totals CALLGRIND_OUT FUNCTION...
      Prints `total=<Ir>` for the whole profile, then for each FUNCTION
      (a demangled name, or a prefix of one ending in `*`) the instructions
      spent in it and everything it calls (`<name>.ir=`), how often it was
      called from outside itself (`<name>.calls=`) and how often its body
      ran (`<name>.runs=`: the execution count shared by most of its
      instructions, which for a compression function whose per-block loop
      is unrolled is the number of blocks). Needs a profile written with
      `--dump-instr=yes`, where each cost line is one instruction.
"""

import socket
import sys


def replay(authority, path, headers_file, count):
    host, port = authority.rsplit(":", 1)
    with open(headers_file) as f:
        headers = [line.rstrip("\n") for line in f]
    if len(headers) < count:
        sys.exit(f"replay: {headers_file} has {len(headers)} lines, {count} wanted")
    sock = socket.create_connection((host, int(port)))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    buf = b""
    bad = {}
    for i in range(count):
        request = (
            f"GET {path} HTTP/1.1\r\nHost: {authority}\r\n"
            f"Authorization: {headers[i]}\r\n\r\n"
        ).encode()
        sock.sendall(request)
        while b"\r\n\r\n" not in buf:
            chunk = sock.recv(65536)
            if not chunk:
                sys.exit(f"replay: connection closed after {i} answers")
            buf += chunk
        head, buf = buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ")[1])
        length = 0
        for line in lines[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-length":
                length = int(value.strip())
            elif name.strip().lower() == "transfer-encoding":
                sys.exit("replay: chunked answers are not supported")
        while len(buf) < length:
            chunk = sock.recv(65536)
            if not chunk:
                sys.exit("replay: connection closed mid-body")
            buf += chunk
        buf = buf[length:]
        if status != 200:
            bad[status] = bad.get(status, 0) + 1
    sock.close()
    if bad:
        sys.exit(f"replay: non-200 answers: {bad}")


def totals(path, functions):
    """Inclusive cost of functions from the call records of a callgrind
    profile: the cost of each call into F from another function, summed."""
    names = {}

    def name_of(spec):
        # `(id) name` defines a compressed name, `(id)` reuses it.
        spec = spec.strip()
        if spec.startswith("("):
            ident, _, rest = spec.partition(")")
            rest = rest.strip()
            if rest:
                names[ident] = rest
            return names.get(ident, ident)
        return spec

    def matches(name, pattern):
        if pattern.endswith("*"):
            return name.startswith(pattern[:-1])
        return name == pattern

    total = None
    # Per function: how many instructions ran how often.
    histogram = {f: {} for f in functions}
    ir = {f: 0 for f in functions}
    calls = {f: 0 for f in functions}
    positions = 1
    current = None
    callee = None
    pending_calls = None
    with open(path) as f:
        for line in f:
            if not line.strip():
                continue
            if pending_calls is not None:
                # The line after `calls=` is the call's inclusive cost:
                # position(s), then the events (Ir first).
                parts = line.split()
                cost = int(parts[positions]) if len(parts) > positions else 0
                for fn in functions:
                    if matches(callee, fn) and not matches(current, fn):
                        ir[fn] += cost
                        calls[fn] += pending_calls
                pending_calls = None
                continue
            if line[0].isdigit() or line[0] in "+-*":
                # A self-cost line: position (instruction, line), then Ir.
                parts = line.split()
                if len(parts) > positions:
                    for fn in functions:
                        if matches(current, fn):
                            count = int(parts[positions])
                            histogram[fn][count] = histogram[fn].get(count, 0) + 1
                continue
            if line.startswith("positions:"):
                positions = len(line.split()) - 1
            elif line.startswith("fn="):
                current = name_of(line[3:])
            elif line.startswith("cfn="):
                callee = name_of(line[4:])
            elif line.startswith("calls="):
                pending_calls = int(line[6:].split()[0])
            elif line.startswith("totals:") or line.startswith("summary:"):
                total = int(line.split()[1])
    if total is None:
        sys.exit(f"totals: no totals line in {path}")
    print(f"total={total}")
    for fn in functions:
        print(f"{fn}.ir={ir[fn]}")
        print(f"{fn}.calls={calls[fn]}")
        runs = max(histogram[fn].items(), key=lambda kv: kv[1], default=(0, 0))[0]
        print(f"{fn}.runs={runs}")


if __name__ == "__main__":
    if len(sys.argv) == 6 and sys.argv[1] == "replay":
        replay(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]))
    elif len(sys.argv) >= 3 and sys.argv[1] == "totals":
        totals(sys.argv[2], sys.argv[3:])
    else:
        sys.exit(__doc__)
