#!/usr/bin/env python3
"""Real third-party Digest clients, driven by tests/real_clients.rs.

    digest_clients.py requests URL USER TOKEN
    digest_clients.py httpx URL USER TOKEN COUNT

Makes the request(s) with Python `requests` (HTTPDigestAuth) or `httpx`
(DigestAuth, COUNT requests on ONE client) and prints one JSON object per
request on stdout: the final status and body, the Authorization header the
library sent last, and how many 401 challenges it answered first. Exits with
status 3 and a message on stderr when the library is not installed.
"""

import importlib
import json
import sys


def need(module):
    try:
        return importlib.import_module(module)
    except ImportError as e:
        sys.stderr.write(
            f"Python module `{module}` is not installed ({e}); "
            f"install it with `python3 -m pip install {module}`\n"
        )
        sys.exit(3)


def report(response):
    print(
        json.dumps(
            {
                "status": response.status_code,
                "body": response.text,
                "authorization": response.request.headers.get("Authorization"),
                "challenges_answered": len(response.history),
            }
        ),
        flush=True,
    )


def main(argv):
    if len(argv) < 5:
        sys.stderr.write(__doc__)
        return 2
    client, url, user, token = argv[1:5]
    if client == "requests":
        requests = need("requests")
        auth = need("requests.auth").HTTPDigestAuth(user, token)
        report(requests.get(url, auth=auth, timeout=15))
    elif client == "httpx" and len(argv) == 6:
        httpx = need("httpx")
        with httpx.Client(auth=httpx.DigestAuth(user, token), timeout=15) as c:
            for _ in range(int(argv[5])):
                report(c.get(url))
    else:
        sys.stderr.write(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
