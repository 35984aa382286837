#!/usr/bin/python3
"""A repository written by `berth fleet`, served by Debian's nginx on
127.0.0.1, through its life: init, releases, a timestamp, a root and a
targets key rotation, a delegation and a team's release, a refresh; after
each step one TUF client (berth's own, or tuf-js's) refreshes from the
client state of the step before and downloads the channels, which must be
exactly the manifests released. Then the attacks: a team's role listing a
channel outside its paths (signed by the team's key, snapshot and
timestamp re-signed by the real online keys) is not delivered, and the
controller refuses to make such a release.

    fleet_repo_serve_test.py BERTH berth|tuf-js

Exit 77 when nginx (or, for tuf-js, node and tuf-js) is missing.
"""
import hashlib
import json
import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fleet_repo_lib as lib  # noqa: E402

manifest = lib.manifest


def main():
    args = lib.test_args(__doc__, "berth-fleet-serve-")
    if args is None:
        return 2
    berth, kind, work = args
    nginx = None
    try:
        repo = os.path.join(work, "repo")
        keys = repo + ".keys"

        fleet = lib.fleet_runner(berth)

        fleet("init", repo)
        nginx = lib.Nginx(repo).start()
        c = lib.client(kind, berth, work, os.path.join(repo, "metadata", "root.json"))
        want = {"refresh": "ok"}

        def check(step, names):
            got = c.update(nginx.url, names)
            exp = {k: want.get(k, "missing") for k in ["refresh"] + names}
            if got != exp:
                raise AssertionError(f"{step}: {c.name} got {got}, expected {exp}")
            print(f"ok {step}")

        channels = ["channels/stable/manifest.json", "channels/beta/manifest.json"]
        check("init: nothing released", channels)

        want["channels/stable/manifest.json"] = manifest(os.path.join(work, "s1.json"), 1)
        fleet("release", repo, "--channel", "stable", os.path.join(work, "s1.json"))
        check("release stable 1", channels)

        want["channels/stable/manifest.json"] = manifest(os.path.join(work, "s2.json"), 2)
        want["channels/beta/manifest.json"] = manifest(os.path.join(work, "b5.json"), 5)
        fleet("release", repo, "--channel", "stable", os.path.join(work, "s2.json"))
        fleet("release", repo, "--channel", "beta", os.path.join(work, "b5.json"))
        check("release stable 2 and beta 5", channels)

        fleet("rotate", repo, "--role", "timestamp")
        check("timestamp key rotated (root 2)", channels)

        fleet("rotate", repo, "--role", "root", "--keys", "2", "--threshold", "2")
        check("root keys rotated to 2 of 2 (root 3)", channels)

        fleet("rotate", repo, "--role", "targets", "--key-type", "ed25519")
        want["channels/stable/manifest.json"] = manifest(os.path.join(work, "s3.json"), 3)
        fleet("release", repo, "--channel", "stable", os.path.join(work, "s3.json"))
        check("targets key rotated to ed25519 (root 4), stable 3", channels)

        team = os.path.join(work, "team-a.pem")
        fleet("keygen", team)
        fleet("delegate", repo, "--role", "team-a", "--paths", "channels/team-a-*/*", "--key", team + ".pub")
        edge = "channels/team-a-edge/manifest.json"
        prod = "channels/prod/manifest.json"
        channels += [edge, prod]
        check("delegated to team-a, nothing released there", channels[:2] + [prod])
        want[edge] = manifest(os.path.join(work, "e1.json"), 1)
        fleet("release", repo, "--channel", "team-a-edge", "--key", team, os.path.join(work, "e1.json"))
        check("team-a released team-a-edge 1", channels)

        r = fleet("refresh", repo, "--within", "3650d", "--key", team)
        assert r.stdout.startswith("re-signed team-a 2, targets"), r.stdout
        check("refresh re-signed team-a, targets, snapshot, timestamp", channels)

        # The controller refuses a team's key outside its paths and the
        # targets key where a team signs.
        manifest(os.path.join(work, "p1.json"), 2)
        r = fleet("release", repo, "--channel", "prod", "--key", team, os.path.join(work, "p1.json"), ok=False)
        assert "is not delegated" in r.stderr, r.stderr
        r = fleet("release", repo, "--channel", "team-a-edge", os.path.join(work, "p1.json"), ok=False)
        assert "give that role's key with --key" in r.stderr, r.stderr

        # The team signs a listing of channels/prod outside its paths itself;
        # snapshot and timestamp are re-signed by the real online keys.
        meta = os.path.join(repo, "metadata")
        with open(os.path.join(meta, "timestamp.json")) as f:
            ts = json.load(f)
        snap_v = ts["signed"]["meta"]["snapshot.json"]["version"]
        with open(os.path.join(meta, f"{snap_v}.snapshot.json")) as f:
            snap = json.load(f)
        team_v = snap["signed"]["meta"]["team-a.json"]["version"]
        with open(os.path.join(meta, f"{team_v}.team-a.json")) as f:
            team_meta = json.load(f)["signed"]
        evil = b'{"version": 99, "name": "evil", "containers": []}\n'
        evil_sha = hashlib.sha256(evil).hexdigest()
        os.makedirs(os.path.join(repo, "targets", "channels", "prod"))
        with open(os.path.join(repo, "targets", "channels", "prod", f"{evil_sha}.manifest.json"), "wb") as f:
            f.write(evil)
        team_meta["targets"][prod] = {"length": len(evil), "hashes": {"sha256": evil_sha}}
        team_meta["targets"]["channels/stable/manifest.json"] = {"length": len(evil), "hashes": {"sha256": evil_sha}}
        team_meta["version"] = team_v + 1
        team_bytes = json.dumps(lib.sign_role(team_meta, [team])).encode()
        with open(os.path.join(meta, f"{team_v + 1}.team-a.json"), "wb") as f:
            f.write(team_bytes)
        snap_s = snap["signed"]
        snap_s["meta"]["team-a.json"] = lib.meta_entry(team_v + 1, team_bytes)
        snap_s["version"] = snap_v + 1
        key_files = lambda role: [os.path.join(keys, role, n) for n in os.listdir(os.path.join(keys, role)) if n.endswith(".pem")]
        snap_bytes = json.dumps(lib.sign_role(snap_s, key_files("snapshot"))).encode()
        with open(os.path.join(meta, f"{snap_v + 1}.snapshot.json"), "wb") as f:
            f.write(snap_bytes)
        ts_s = ts["signed"]
        ts_s["meta"]["snapshot.json"] = lib.meta_entry(snap_v + 1, snap_bytes)
        ts_s["version"] += 1
        with open(os.path.join(meta, "timestamp.json"), "w") as f:
            json.dump(lib.sign_role(ts_s, key_files("timestamp")), f)
        check("team-a's listing of channels outside its paths is not delivered", channels)

        # The controller reads that repository and goes on from it.
        want["channels/stable/manifest.json"] = manifest(os.path.join(work, "s4.json"), 4)
        fleet("release", repo, "--channel", "stable", os.path.join(work, "s4.json"))
        check("release stable 4 after the attack", channels)
        want[edge] = manifest(os.path.join(work, "e2.json"), 2)
        fleet("release", repo, "--channel", "team-a-edge", "--key", team, os.path.join(work, "e2.json"))
        with open(os.path.join(meta, f"{team_v + 2}.team-a.json")) as f:
            listed = sorted(json.load(f)["signed"]["targets"])
        assert listed == [edge], f"team-a's next release re-signed {listed}"
        check("team-a's next release keeps only its own channels", channels)
        return 0
    except lib.Skip as e:
        print(f"SKIP: {e}")
        return 77
    finally:
        if nginx:
            nginx.close()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
