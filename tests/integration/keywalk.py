#!/usr/bin/env python3
"""keywalk: a device's walk over keys manifests, with the openssl CLI doing every signature check.

    keywalk.py --trust PEM --work DIR ENVELOPE...

Starts trusting the key in PEM; for each envelope (keys manifests, in version order) it needs a good
signature by a trusted key *and* by every key the manifest announces, then trusts the announced
set. Prints "trusted KEYID" after each step; exit 1 at the first envelope that does not verify.
"""

import argparse
import base64
import hashlib
import json
import os
import subprocess
import sys

PAYLOAD_TYPE = "application/vnd.hearth.manifest+json"


def der_of(pem_path):
    return subprocess.run(["openssl", "pkey", "-pubin", "-in", pem_path, "-outform", "der"],
                          check=True, capture_output=True).stdout


def verify(pem_path, pae, sig, work):
    with open(os.path.join(work, "pae"), "wb") as f:
        f.write(pae)
    with open(os.path.join(work, "sig"), "wb") as f:
        f.write(sig)
    r = subprocess.run(["openssl", "dgst", "-sha256", "-verify", pem_path, "-signature",
                        os.path.join(work, "sig"), os.path.join(work, "pae")], capture_output=True)
    return r.returncode == 0


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--trust", required=True)
    p.add_argument("--work", required=True)
    p.add_argument("envelopes", nargs="+")
    a = p.parse_args()
    trusted = {hashlib.sha256(der_of(a.trust)).hexdigest(): a.trust}
    last = 0
    for n, path in enumerate(a.envelopes):
        env = json.load(open(path))
        if env["payloadType"] != PAYLOAD_TYPE:
            print("refused %s: payloadType" % path)
            return 1
        payload = base64.b64decode(env["payload"], validate=True)
        pae = b"DSSEv1 %d %s %d " % (len(PAYLOAD_TYPE), PAYLOAD_TYPE.encode(), len(payload)) + payload
        sigs = {s["keyid"]: base64.b64decode(s["sig"], validate=True) for s in env["signatures"]}
        if not any(k in trusted and verify(trusted[k], pae, sigs[k], a.work) for k in sigs):
            print("refused %s: no good signature by a trusted key" % path)
            return 1
        body = json.loads(payload)  # only now: it verified
        if body["type"] != "keys" or body["version"] <= last:
            print("refused %s: not the next keys manifest" % path)
            return 1
        new = {}
        for i, k in enumerate(body["keys"]):
            pem = os.path.join(a.work, "k%d-%d.pem" % (n, i))
            open(pem, "w").write(k["public_key"])
            if hashlib.sha256(der_of(pem)).hexdigest() != k["keyid"]:
                print("refused %s: keyid does not match its key" % path)
                return 1
            if k["keyid"] not in sigs or not verify(pem, pae, sigs[k["keyid"]], a.work):
                print("refused %s: the new key did not sign" % path)
                return 1
            new[k["keyid"]] = pem
        trusted, last = new, body["version"]
        print("trusted " + " ".join(sorted(trusted)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
