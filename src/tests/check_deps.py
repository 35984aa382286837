#!/usr/bin/python3
"""Fails when an #include goes against the dependency direction of DESIGN.md:
src/ -> ota/ -> image/ -> src/util/ and src/ -> runtime/ -> src/util/.

  runtime/  may include runtime/ and src/util/ (not image/, ota/ or src/)
  image/    may include image/ and src/util/ (not runtime/, ota/ or src/)
  ota/      may include ota/, image/ and src/util/ (not runtime/ or src/)
  cross/    may include cross/, image/ and src/util/ (the image builder)
  src/util/ may include src/util/ only
  src/      may include anything

Each quoted include is resolved as the compiler does (beside the including
file, then against the include directories: the checkout and src/), so
"util/fd.hpp" is src/util and "run_image.hpp" seen from runtime/ is src/.
Tests beside the code (tests/ folders) follow the same rules.

  check_deps.py ROOT         checks the tree at ROOT; prints each violation
  check_deps.py --self-test  plants one violation of each rule in a temporary
                             tree and checks that each one fails (and that
                             the tree without them passes)
"""
import os
import re
import sys
import tempfile

INCLUDE = re.compile(r'^\s*#\s*include\s*"([^"]+)"', re.M)
ALLOWED = {
    "runtime": {"runtime", "util"},
    "image": {"image", "util"},
    "ota": {"ota", "image", "util"},
    "cross": {"cross", "image", "util"},
    "util": {"util"},
    "src": {"src", "util", "runtime", "image", "ota", "cross"},
}
SOURCES = (".cpp", ".hpp", ".h", ".cc", ".inc")


def area(root, path):
    """The area of a file inside root: runtime, image, ota, util, src or None."""
    rel = os.path.relpath(path, root).split(os.sep)
    if rel[0] == "src":
        return "util" if len(rel) > 1 and rel[1] == "util" else "src"
    return rel[0] if rel[0] in ("runtime", "image", "ota", "cross") else None


def resolve(root, including, name):
    for base in (os.path.dirname(including), root, os.path.join(root, "src")):
        p = os.path.normpath(os.path.join(base, name))
        if os.path.isfile(p):
            return p
    return None


def violations(root):
    out = []
    for top in ("src", "runtime", "image", "ota", "cross"):
        for d, _, files in os.walk(os.path.join(root, top)):
            for f in sorted(files):
                if not f.endswith(SOURCES):
                    continue
                path = os.path.join(d, f)
                src_area = area(root, path)
                text = open(path, encoding="utf-8", errors="replace").read()
                for m in INCLUDE.finditer(text):
                    target = resolve(root, path, m.group(1))
                    if target is None:
                        continue  # generated (version_gen.hpp) or a system header in quotes
                    dst = area(root, target)
                    if dst is not None and dst not in ALLOWED[src_area]:
                        line = text.count("\n", 0, m.start()) + 1
                        out.append(f"{os.path.relpath(path, root)}:{line}: {src_area} includes "
                                   f"{os.path.relpath(target, root)} ({dst})")
    return out


def self_test():
    plants = [
        ("runtime/planted.cpp", '#include "image/store.hpp"\n'),
        ("runtime/planted.cpp", '#include "ota/updater.hpp"\n'),
        ("runtime/planted.cpp", '#include "run_image.hpp"\n'),
        ("image/planted.cpp", '#include "runtime/spec.hpp"\n'),
        ("image/planted.cpp", '#include "cli.hpp"\n'),
        ("image/planted.cpp", '#include "ota/updater.hpp"\n'),
        ("src/util/planted.cpp", '#include "image/store.hpp"\n'),
        ("src/util/planted.cpp", '#include "runtime/spec.hpp"\n'),
        ("src/util/planted.cpp", '#include "../cli.hpp"\n'),
        ("ota/planted.cpp", '#include "runtime/spec.hpp"\n'),
        ("runtime/tests/planted_test.cpp", '#include "image/store.hpp"\n'),
    ]
    headers = ["image/store.hpp", "ota/updater.hpp", "runtime/spec.hpp", "src/cli.hpp", "src/run_image.hpp",
               "src/util/fd.hpp"]
    failed = 0
    with tempfile.TemporaryDirectory(prefix="berth-deps-") as root:
        for h in headers:
            os.makedirs(os.path.dirname(os.path.join(root, h)), exist_ok=True)
            open(os.path.join(root, h), "w").write("#pragma once\n")
        # Allowed includes: the clean tree passes.
        for f, inc in [("runtime/ok.cpp", "util/fd.hpp"), ("image/ok.cpp", "util/fd.hpp"),
                       ("ota/ok.cpp", "image/store.hpp"), ("src/ok.cpp", "runtime/spec.hpp"),
                       ("src/util/ok.cpp", "fd.hpp")]:
            os.makedirs(os.path.dirname(os.path.join(root, f)), exist_ok=True)
            open(os.path.join(root, f), "w").write(f'#include "{inc}"\n#include <vector>\n')
        clean = violations(root)
        if clean:
            print("FAIL: the clean tree has violations:", clean)
            failed += 1
        for f, text in plants:
            p = os.path.join(root, f)
            os.makedirs(os.path.dirname(p), exist_ok=True)
            open(p, "w").write(text)
            v = violations(root)
            if len(v) == 1:
                print(f"ok: caught {v[0]}")
            else:
                print(f"FAIL: {f} with {text.strip()}: {v or 'not caught'}")
                failed += 1
            os.remove(p)
    return 1 if failed else 0


def main():
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    if sys.argv[1] == "--self-test":
        return self_test()
    v = violations(sys.argv[1])
    for line in v:
        print(line)
    print(f"{len(v)} includes against the dependency direction" if v else "includes follow the dependency direction")
    return 1 if v else 0


if __name__ == "__main__":
    sys.exit(main())
