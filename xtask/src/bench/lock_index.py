# Writes a PEP 503 index (static layout, with PEP 658 metadata files) for `cargo xtask bench
# lock`: N packages of several versions each, with a dependency graph whose closure from the
# requirements file has at least 60 packages. Deterministic: same arguments, same bytes.
import hashlib, io, os, random, sys, zipfile

out, count, versions = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = random.Random(5)
names = ["pkg-%03d" % i for i in range(count)]
deps = {}
for i, name in enumerate(names):
    later = names[i + 1 :]
    k = min(len(later), rng.choice([0, 1, 2, 2, 3]))
    deps[name] = rng.sample(later[:40], min(k, len(later[:40])))

def metadata(name, version, requires):
    text = "Metadata-Version: 2.1\nName: %s\nVersion: %s\nRequires-Python: >=3.7\n" % (name, version)
    for r in requires:
        text += "Requires-Dist: %s\n" % r
    return text + "\nBench package.\n"

def wheel(name, version, meta):
    dist = name.replace("-", "_")
    info = "%s-%s.dist-info" % (dist, version)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        files = [
            ("%s/__init__.py" % dist, "VERSION = %r\n" % version),
            ("%s/METADATA" % info, meta),
            ("%s/WHEEL" % info, "Wheel-Version: 1.0\nGenerator: bench\nRoot-Is-Purelib: true\nTag: py3-none-any\n"),
        ]
        record = ""
        for path, text in files:
            zi = zipfile.ZipInfo(path, (1980, 1, 1, 0, 0, 0))
            zi.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(zi, text)
            record += "%s,,\n" % path
        record += "%s/RECORD,,\n" % info
        zi = zipfile.ZipInfo("%s/RECORD" % info, (1980, 1, 1, 0, 0, 0))
        z.writestr(zi, record)
    return buf.getvalue()

os.makedirs(os.path.join(out, "files"), exist_ok=True)
root = "<!DOCTYPE html>\n<html><body>\n"
for name in names:
    root += '<a href="%s/">%s</a>\n' % (name, name)
    page = "<!DOCTYPE html>\n<html><body><h1>Links for %s</h1>\n" % name
    for v in range(1, versions + 1):
        version = "%d.%d.0" % (v, rng.randint(0, 9))
        requires = ["%s>=1.0" % d for d in deps[name]]
        meta = metadata(name, version, requires)
        data = wheel(name, version, meta)
        filename = "%s-%s-py3-none-any.whl" % (name.replace("-", "_"), version)
        with open(os.path.join(out, "files", filename), "wb") as f:
            f.write(data)
        with open(os.path.join(out, "files", filename + ".metadata"), "w") as f:
            f.write(meta)
        mh = hashlib.sha256(meta.encode()).hexdigest()
        page += '<a href="../../files/%s#sha256=%s" data-requires-python="&gt;=3.7" data-dist-info-metadata="sha256=%s" data-core-metadata="sha256=%s">%s</a><br/>\n' % (
            filename, hashlib.sha256(data).hexdigest(), mh, mh, filename)
    page += "</body></html>\n"
    os.makedirs(os.path.join(out, "simple", name), exist_ok=True)
    with open(os.path.join(out, "simple", name, "index.html"), "w") as f:
        f.write(page)
root += "</body></html>\n"
with open(os.path.join(out, "simple", "index.html"), "w") as f:
    f.write(root)

# Roots: the first packages, until the closure has at least 60 packages.
closure, roots = set(), []
def walk(n):
    if n not in closure:
        closure.add(n)
        for d in deps[n]:
            walk(d)
for name in names:
    if len(closure) >= 60 and len(roots) >= 5:
        break
    roots.append(name)
    walk(name)
with open(os.path.join(out, "requirements.in"), "w") as f:
    f.write("".join("%s\n" % r for r in roots))
print(len(closure))
