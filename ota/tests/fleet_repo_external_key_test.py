#!/usr/bin/python3
"""`berth fleet rotate --pubkey`: a role rotated to keys held elsewhere (an
HSM-backed signer, here openssl with key files outside the repository's
key directories), the change staged until `berth fleet sign` brings a
threshold of their signatures (`--key`, or `--payload` signed by openssl
and handed back with `--signature`). Served by Debian's nginx on
127.0.0.1; after each step one TUF client (berth's own, or tuf-js's)
refreshes and must deliver exactly what was published:

- targets rotated to 2 of 2 outside keys: nothing is published while one
  signature is missing; a repository that publishes the half-signed change
  anyway is refused by the client (threshold not met); with both
  signatures it is published, and releases wait for both again;
- root rotated to an outside key: published once that key signed; the next
  rotation, which that root key must sign, waits for it too;
- a delegated team whose key is held elsewhere: `release --role` stages
  the release (nothing published) until the team's signature over the
  payload comes back.

    fleet_repo_external_key_test.py BERTH berth|tuf-js

Exit 77 when nginx or openssl (or, for tuf-js, node and tuf-js) is missing.
"""
import json
import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fleet_repo_lib as lib  # noqa: E402

manifest = lib.manifest
STABLE = "channels/stable/manifest.json"
TEAM = "channels/team-a/manifest.json"


def hsm_key(path):
    """A P-256 key pair made by openssl: what an outside signer holds."""
    subprocess.run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", path],
                   check=True, capture_output=True)
    subprocess.run(["openssl", "pkey", "-in", path, "-pubout", "-out", path + ".pub"], check=True, capture_output=True)
    return path


def main():
    args = lib.test_args(__doc__, "berth-fleet-ext-")
    if args is None:
        return 2
    berth, kind, work = args
    servers = []
    try:
        if not shutil.which("openssl"):
            raise lib.Skip("openssl is not installed")

        fleet = lib.fleet_runner(berth)

        def serve(repo, sub):
            os.makedirs(os.path.join(work, sub))
            nginx = lib.Nginx(repo).start()
            servers.append(nginx)
            return nginx, lib.client(kind, berth, os.path.join(work, sub), os.path.join(repo, "metadata", "root.json"))

        def check(step, nginx, c, want):
            got = c.update(nginx.url, [STABLE] if want.get("refresh") == "ok" else [])
            if got != want:
                raise AssertionError(f"{step}: {c.name} got {got}, expected {want}")
            print(f"ok {step}")

        def published(repo):
            with open(os.path.join(repo, "metadata", "timestamp.json"), "rb") as f:
                return f.read()

        repo = os.path.join(work, "repo")
        fleet("init", repo)
        nginx, c = serve(repo, "client")
        want = {"refresh": "ok", STABLE: manifest(os.path.join(work, "s1.json"), 1)}
        fleet("release", repo, "--channel", "stable", os.path.join(work, "s1.json"))
        check("stable 1 signed by the online targets key", nginx, c, want)

        # targets -> 2 of 2 keys held elsewhere.
        hsm1, hsm2 = hsm_key(os.path.join(work, "hsm1.pem")), hsm_key(os.path.join(work, "hsm2.pem"))
        before = published(repo)
        r = fleet("rotate", repo, "--role", "targets", "--pubkey", hsm1 + ".pub", "--pubkey", hsm2 + ".pub", "--threshold", "2")
        assert "staged, waiting for signatures: targets (" in r.stdout and "of 2 needed" in r.stdout, r.stdout
        assert published(repo) == before, "a staged rotation was published"
        manifest(os.path.join(work, "s9.json"), 9)
        fleet("release", repo, "--channel", "stable", os.path.join(work, "s9.json"), ok=False,
              err="a change waits for signatures")
        check("rotation staged: nothing published", nginx, c, want)

        # One outside signature over the payload, made by openssl.
        payload, sig = os.path.join(work, "payload"), os.path.join(work, "sig1")
        with open(payload, "wb") as f:
            f.write(fleet("sign", repo, "--payload", "targets").stdout.encode())
        subprocess.run(["openssl", "dgst", "-sha256", "-sign", hsm1, "-out", sig, payload], check=True)
        bad = os.path.join(work, "sig-bad")
        subprocess.run(["openssl", "dgst", "-sha256", "-sign", hsm1, "-out", bad, sig], check=True)
        fleet("sign", repo, "--signature", "targets=" + bad, ok=False, err="does not verify with any key of role `targets`")
        r = fleet("sign", repo, "--signature", "targets=" + sig)
        assert r.stdout.startswith("staged, waiting for signatures: targets (") and "of 2 needed" in r.stdout, r.stdout
        assert published(repo) == before, "a change with 1 of 2 signatures was published"
        check("1 of 2 outside signatures: still nothing published", nginx, c, want)

        # A repository publishing the half-signed change anyway: refused.
        forged = os.path.join(work, "forged")
        shutil.copytree(repo, forged)
        keys = repo + ".keys"
        key_files = lambda role: [os.path.join(keys, role, n) for n in os.listdir(os.path.join(keys, role)) if n.endswith(".pem")]
        meta = os.path.join(forged, "metadata")
        staged = os.path.join(forged, "staged")
        shutil.copy(os.path.join(staged, "root.json"), os.path.join(meta, "2.root.json"))
        shutil.copy(os.path.join(staged, "root.json"), os.path.join(meta, "root.json"))
        with open(os.path.join(staged, "targets.json"), "rb") as f:
            tbytes = f.read()
        tv = json.loads(tbytes)["signed"]["version"]
        with open(os.path.join(meta, f"{tv}.targets.json"), "wb") as f:
            f.write(tbytes)
        ts = json.loads(published(repo))["signed"]
        sv = ts["meta"]["snapshot.json"]["version"]
        snap = {"_type": "snapshot", "spec_version": "1.0.31", "version": sv + 1, "expires": ts["expires"],
                "meta": {"targets.json": lib.meta_entry(tv, tbytes)}}
        sbytes = json.dumps(lib.sign_role(snap, key_files("snapshot"))).encode()
        with open(os.path.join(meta, f"{sv + 1}.snapshot.json"), "wb") as f:
            f.write(sbytes)
        ts["version"] += 1
        ts["meta"]["snapshot.json"] = lib.meta_entry(sv + 1, sbytes)
        with open(os.path.join(meta, "timestamp.json"), "w") as f:
            json.dump(lib.sign_role(ts, key_files("timestamp")), f)
        fnginx, fc = serve(forged, "forged-client")
        got = fc.update(fnginx.url, [STABLE])
        if kind == "berth":
            assert "targets: 1 of 2 required signatures verify (threshold not met)" in got["refresh"], got
        else:
            assert got["refresh"] != "ok", got
        print("ok the half-signed rotation, published anyway, is refused")

        r = fleet("sign", repo, "--key", hsm2)
        assert r.stdout.startswith("published: root 2, targets 3"), r.stdout
        assert not os.path.exists(os.path.join(repo, "staged"))
        check("2 of 2 outside signatures: root 2 and targets 3 published", nginx, c, want)

        # Releases now wait for the outside keys too.
        want2 = manifest(os.path.join(work, "s2.json"), 2)
        r = fleet("release", repo, "--channel", "stable", os.path.join(work, "s2.json"))
        assert "staged, waiting for signatures: targets" in r.stdout, r.stdout
        check("release staged", nginx, c, want)
        fleet("release", repo, "--channel", "stable", os.path.join(work, "s9.json"), ok=False,
              err="a change waits for signatures")
        fleet("sign", repo, "--key", hsm1, "--key", hsm2)
        want[STABLE] = want2
        check("release signed by both outside keys: stable 2", nginx, c, want)

        # root -> a key held elsewhere; the next rotation waits for it.
        hroot = hsm_key(os.path.join(work, "hsm-root.pem"))
        r = fleet("rotate", repo, "--role", "root", "--pubkey", hroot + ".pub", "--threshold", "1")
        assert "staged, waiting for signatures: root (" in r.stdout, r.stdout
        fleet("sign", repo, "--discard")
        assert not os.path.exists(os.path.join(repo, "staged"))
        fleet("rotate", repo, "--role", "root", "--pubkey", hroot + ".pub", "--threshold", "1")
        check("root rotation staged", nginx, c, want)
        fleet("sign", repo, "--key", hroot)
        check("root 3 (outside key) published", nginx, c, want)
        r = fleet("rotate", repo, "--role", "timestamp")
        assert "root version 4; staged, waiting for signatures: root (" in r.stdout, r.stdout
        r = fleet("sign", repo, "--key", hroot)
        assert r.stdout.startswith("published: root 4"), r.stdout
        check("timestamp rotated, root 4 signed by the outside root key", nginx, c, want)

        # A team whose key is held elsewhere: its release is staged for it.
        repo3 = os.path.join(work, "repo3")
        fleet("init", repo3)
        team = hsm_key(os.path.join(work, "team.pem"))
        fleet("delegate", repo3, "--role", "team-a", "--paths", "channels/team-a/*", "--key", team + ".pub")
        n3, c3 = serve(repo3, "team-client")
        before = published(repo3)
        want3 = {"refresh": "ok", TEAM: manifest(os.path.join(work, "t1.json"), 1)}
        fleet("release", repo3, "--channel", "team-a", "--role", "team-b", os.path.join(work, "t1.json"), ok=False,
              err="role `team-b` is not one trusted for channel `team-a`")
        r = fleet("release", repo3, "--channel", "team-a", "--role", "team-a", os.path.join(work, "t1.json"))
        assert r.stdout.startswith(f"{TEAM}: not published yet; staged, waiting for signatures: role `team-a` ("), r.stdout
        assert published(repo3) == before, "a release staged for the team's key was published"
        with open(payload, "wb") as f:
            f.write(fleet("sign", repo3, "--payload", "team-a").stdout.encode())
        subprocess.run(["openssl", "dgst", "-sha256", "-sign", hroot, "-out", bad, payload], check=True)
        fleet("sign", repo3, "--signature", "team-a=" + bad, ok=False, err="does not verify with any key of role `team-a`")
        subprocess.run(["openssl", "dgst", "-sha256", "-sign", team, "-out", sig, payload], check=True)
        r = fleet("sign", repo3, "--signature", "team-a=" + sig)
        assert r.stdout.startswith("published: "), r.stdout
        got = c3.update(n3.url, [TEAM])
        if got != want3:
            raise AssertionError(f"team-a's release signed by its outside key: {c3.name} got {got}, expected {want3}")
        print("ok a release staged for team-a's outside key, published once that key signed it")
        return 0
    except lib.Skip as e:
        print(f"SKIP: {e}")
        return 77
    finally:
        for s in servers:
            s.close()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
