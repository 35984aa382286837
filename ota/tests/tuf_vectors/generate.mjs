// Generates the TUF test repositories under this folder (one folder per
// case, see README.md) with tuf-js's canonical JSON and @tufjs/models, from
// fixed keys (keys.json, made once) and far-future or long-past expiries, so
// the committed output needs no clock and CI needs no npm.
//
//   npm install --prefix ~/.cache/berth-tufjs tuf-js@5 @tufjs/models
//   BERTH_TUFJS_DIR=~/.cache/berth-tufjs node ota/tests/tuf_vectors/generate.mjs [CASE...]
//
// Each case is a list of steps; a client keeps its metadata directory from
// one step to the next (that is how rollback and fast-forward are tested).
// A step is a repository spec: baseSpec() with a few fields changed.
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const tufjsDir = process.env.BERTH_TUFJS_DIR || path.join(os.homedir(), '.cache', 'berth-tufjs');
const require = createRequire(path.join(tufjsDir, 'node_modules', 'noop.js'));
const { canonicalize } = require('@tufjs/canonical-json');
const { Metadata } = require('@tufjs/models');

const FAR = '2099-01-01T00:00:00Z';
const PAST = '2001-01-01T00:00:00Z';
const MANIFEST = 'channels/stable/manifest.json';

// ---- keys ------------------------------------------------------------------

const keyFile = path.join(here, 'keys.json');
const keyNames = {
  ecdsa: ['root1', 'root2', 'root3', 'ts1', 'ts2', 'snap1', 'tgt1', 'del1', 'del2'],
  ed25519: ['ed1'],
  rsa: ['rsa1'],
};
let keys = fs.existsSync(keyFile) ? JSON.parse(fs.readFileSync(keyFile, 'utf8')) : {};
for (const [type, names] of Object.entries(keyNames)) {
  for (const name of names) {
    if (keys[name]) continue;
    const pair = type === 'ecdsa' ? crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' })
      : type === 'ed25519' ? crypto.generateKeyPairSync('ed25519')
      : crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
    keys[name] = {
      type,
      private: pair.privateKey.export({ type: 'pkcs8', format: 'pem' }),
      public: pair.publicKey.export({ type: 'spki', format: 'pem' }),
    };
  }
}
fs.writeFileSync(keyFile, JSON.stringify(keys, null, 1) + '\n');

/// The key as metadata lists it.
function keyEntry(name) {
  const k = keys[name];
  if (k.type === 'ecdsa') return { keytype: 'ecdsa', scheme: 'ecdsa-sha2-nistp256', keyval: { public: k.public } };
  if (k.type === 'rsa') return { keytype: 'rsa', scheme: 'rsassa-pss-sha256', keyval: { public: k.public } };
  const der = crypto.createPublicKey(k.public).export({ type: 'spki', format: 'der' });
  return { keytype: 'ed25519', scheme: 'ed25519', keyval: { public: der.subarray(der.length - 32).toString('hex') } };
}
const keyId = (name) => crypto.createHash('sha256').update(canonicalize(keyEntry(name))).digest('hex');

function sign(name, bytes) {
  const k = keys[name];
  const priv = crypto.createPrivateKey(k.private);
  if (k.type === 'ecdsa') return crypto.sign('sha256', bytes, priv).toString('hex');
  if (k.type === 'ed25519') return crypto.sign(null, bytes, priv).toString('hex');
  return crypto.sign('sha256', bytes, { key: priv, padding: crypto.constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 })
    .toString('hex');
}

// ---- repositories ------------------------------------------------------------

const sha256 = (b) => crypto.createHash('sha256').update(b).digest('hex');

function baseSpec() {
  return {
    consistent: false,
    roles: {
      root: { keys: ['root1'], threshold: 1 },
      timestamp: { keys: ['ts1'], threshold: 1 },
      snapshot: { keys: ['snap1'], threshold: 1 },
      targets: { keys: ['tgt1'], threshold: 1 },
    },
    /// Extra root versions after 1: {version?, roles?, signers, expires?}
    rotations: [],
    rootExpires: FAR,
    timestamp: { version: 1, expires: FAR },
    snapshot: { version: 1, expires: FAR },
    targets: { version: 1, expires: FAR },
    /// Delegated roles by name: {version, expires, keys, threshold, paths | hashPrefixes,
    /// terminating, files: {path: content}, signers, parent ('targets' or a role)}
    delegated: {},
    files: { [MANIFEST]: '{"version": 1, "channel": "stable"}\n' },
    /// Edits of a role's `signed` before signing, of its envelope after, of its bytes after writing.
    edit: {}, envelope: {}, bytes: {},
  };
}

function envelope(signed, signers) {
  const bytes = Buffer.from(canonicalize(signed));
  return { signatures: signers.map((s) => ({ keyid: keyId(s), sig: sign(s, bytes) })), signed };
}

function rootSigned(spec, version, roles, expires) {
  const keyset = {};
  const r = {};
  for (const [role, { keys: names, threshold, keyids }] of Object.entries(roles)) {
    for (const n of names) keyset[keyId(n)] = keyEntry(n);
    r[role] = { keyids: keyids || names.map(keyId), threshold };
  }
  return { _type: 'root', spec_version: '1.0.31', version, expires, consistent_snapshot: spec.consistent, keys: keyset, roles: r };
}

const fileInfo = (content) => ({ length: Buffer.byteLength(content), hashes: { sha256: sha256(content) } });

/// Writes the repository of `spec` to `dir` (metadata/ and targets/).
function writeRepo(spec, dir) {
  const meta = path.join(dir, 'metadata');
  const tdir = path.join(dir, 'targets');
  fs.mkdirSync(meta, { recursive: true });
  fs.mkdirSync(tdir, { recursive: true });
  const out = {};  // metadata file name -> bytes
  const emit = (role, signed, signers) => {
    if (spec.edit[role]) spec.edit[role](signed);
    let env = envelope(signed, signers);
    if (spec.envelope[role]) env = spec.envelope[role](env) || env;
    let bytes = JSON.stringify(env, null, 1);
    if (spec.bytes[role]) bytes = spec.bytes[role](bytes);
    if (!spec.modelsRefuse) checkWithModels(bytes, role);
    return bytes;
  };

  // Roots: 1 and each rotation; root.json is the last.
  let roles = spec.roles;
  const roots = [emit('root1', rootSigned(spec, 1, roles, spec.rotations.length ? FAR : spec.rootExpires),
    spec.rootSigners1 || roles.root.keys)];
  spec.rotations.forEach((rot, i) => {
    const version = rot.version || i + 2;
    roles = { ...roles, ...(rot.roles || {}) };
    const last = i === spec.rotations.length - 1;
    roots.push(emit(`root${i + 2}`, rootSigned(spec, version, roles, last ? spec.rootExpires : FAR), rot.signers));
  });
  roots.forEach((b, i) => { out[`${i + 1}.root.json`] = b; });
  out['root.json'] = roots[roots.length - 1];

  // Target files, under their hash-prefixed names in a consistent repository.
  const writeTarget = (p, content) => {
    const name = spec.consistent ? path.join(path.dirname(p), `${sha256(content)}.${path.basename(p)}`) : p;
    fs.mkdirSync(path.dirname(path.join(tdir, name)), { recursive: true });
    fs.writeFileSync(path.join(tdir, name), spec.targetBytes?.[p] ?? content);
  };
  const targetsOf = (files) => Object.fromEntries(Object.entries(files).map(([p, c]) => {
    writeTarget(p, c);
    return [p, fileInfo(c)];
  }));
  const delegationsOf = (parent) => {
    const sr = spec.succinct;
    if (sr && (sr.parent || 'targets') === parent) {
      const keyset = Object.fromEntries(sr.keys.map((k) => [keyId(k), keyEntry(k)]));
      return { keys: keyset, succinct_roles: { keyids: sr.keys.map(keyId), threshold: 1, bit_length: sr.bits,
        name_prefix: sr.prefix } };
    }
    const children = Object.entries(spec.delegated).filter(([, d]) => !d.bin && (d.parent || 'targets') === parent);
    const extra = parent === 'targets' ? [] : spec.delegated[parent].delegates || [];
    if (!children.length && !extra.length) return undefined;
    const keyset = {};
    const rolesOut = [...children, ...extra.map((d) => [d.name, d])].map(([name, d]) => {
      for (const k of d.keys) keyset[keyId(k)] = keyEntry(k);
      const r = { name, keyids: d.keys.map(keyId), threshold: d.threshold || 1, terminating: !!d.terminating };
      if (d.hashPrefixes) r.path_hash_prefixes = d.hashPrefixes;
      else r.paths = d.paths;
      return r;
    });
    return { keys: keyset, roles: rolesOut };
  };

  const snapMeta = {};
  // The file a client's percent-encoded URL for role `name` reaches: served
  // from disk, the URL is decoded except %2F (a file name holds no '/').
  const onDisk = (name) => name.replace(/\//g, '%2F');
  const metaName = (name, version) => spec.consistent ? `${version}.${onDisk(name)}.json` : `${onDisk(name)}.json`;
  const tsigned = { _type: 'targets', spec_version: '1.0.31', version: spec.targets.version, expires: spec.targets.expires,
    targets: targetsOf(spec.files) };
  const td = delegationsOf('targets');
  if (td) tsigned.delegations = td;
  const tbytes = emit('targets', tsigned, spec.targets.signers || roles.targets.keys);
  out[metaName('targets', spec.targets.version)] = tbytes;
  snapMeta['targets.json'] = { version: spec.targets.version, ...(spec.snapshotHashes ? fileInfo(tbytes) : {}) };
  for (const [name, d] of Object.entries(spec.delegated)) {
    const signed = { _type: 'targets', spec_version: '1.0.31', version: d.version || 1, expires: d.expires || FAR,
      targets: targetsOf(d.files || {}) };
    const dd = delegationsOf(name);
    if (dd) signed.delegations = dd;
    const b = emit(name, signed, d.signers || d.keys);
    out[metaName(name, d.version || 1)] = b;
    snapMeta[`${name}.json`] = { version: d.version || 1 };
  }
  if (spec.snapshotMeta) spec.snapshotMeta(snapMeta, out);
  const sbytes = emit('snapshot', { _type: 'snapshot', spec_version: '1.0.31', version: spec.snapshot.version,
    expires: spec.snapshot.expires, meta: snapMeta }, spec.snapshot.signers || roles.snapshot.keys);
  out[spec.consistent ? `${spec.snapshot.version}.snapshot.json` : 'snapshot.json'] = sbytes;
  const tsMeta = { 'snapshot.json': { version: spec.timestamp.snapshotVersion || spec.snapshot.version, ...fileInfo(sbytes) } };
  if (spec.timestampMeta) spec.timestampMeta(tsMeta, sbytes);
  out['timestamp.json'] = emit('timestamp', { _type: 'timestamp', spec_version: '1.0.31', version: spec.timestamp.version,
    expires: spec.timestamp.expires, meta: tsMeta }, spec.timestamp.signers || roles.timestamp.keys);
  if (spec.after) spec.after(out);
  for (const [name, b] of Object.entries(out)) fs.writeFileSync(path.join(meta, name), b);
  return out;
}

/// Every file the generator writes must at least parse as tuf-js metadata
/// (attacks included: they are attacks on signatures and versions, not on
/// JSON), except where the spec says tuf-js refuses it (modelsRefuse).
function checkWithModels(bytes, role) {
  try {
    Metadata.fromJSON(JSON.parse(bytes).signed._type, JSON.parse(bytes));
  } catch (e) {
    throw new Error(`${role}: @tufjs/models refuses it: ${e.message}`);
  }
}

// ---- cases -----------------------------------------------------------------

/// name -> { description, steps: [{ spec, expect: 'ok'|'error', error, rootVersion, targets: [...] }] }
const cases = {};
const ok = (spec, extra = {}) => ({ spec, expect: 'ok', ...extra });
const fail = (spec, error, extra = {}) => ({ spec, expect: 'error', error, ...extra });
const manifestOk = (content = baseSpec().files[MANIFEST]) => ({ name: MANIFEST, expect: 'ok', sha256: sha256(content) });
const withSpec = (f) => { const s = baseSpec(); f(s); return s; };
const allKeys = (name) => withSpec((s) => { for (const r of Object.values(s.roles)) r.keys = [name]; });

cases['basic-ecdsa'] = { description: 'ecdsa-sha2-nistp256 keys; a target found and downloaded, another missing',
  steps: [ok(baseSpec(), { targets: [manifestOk(), { name: 'channels/none/manifest.json', expect: 'missing' }] })] };
cases['basic-ed25519'] = { description: 'ed25519 keys for every role', steps: [ok(allKeys('ed1'), { targets: [manifestOk()] })] };
cases['basic-rsa'] = { description: 'rsassa-pss-sha256 keys for every role', steps: [ok(allKeys('rsa1'), { targets: [manifestOk()] })] };
cases['consistent-snapshot'] = { description: 'N.snapshot.json, N.targets.json and hash-prefixed target files',
  steps: [ok(withSpec((s) => { s.consistent = true; s.snapshot.version = 3; s.targets.version = 2; s.timestamp.version = 4; }),
    { targets: [manifestOk()] })] };

const rotate = (s) => {
  s.rotations = [
    { roles: { root: { keys: ['root2'], threshold: 1 } }, signers: ['root1', 'root2'] },
    { roles: { root: { keys: ['root2', 'root3'], threshold: 2 } }, signers: ['root2', 'root3'] },
  ];
};
cases['root-rotation'] = { description: 'root 1 -> 2 (new key) -> 3 (threshold 2), each signed by old and new',
  steps: [ok(withSpec(rotate), { rootVersion: 3 })] };
cases['root-rotation-not-signed-by-old-root'] = { description: 'root 2 signed only by its own key',
  steps: [fail(withSpec((s) => { rotate(s); s.rotations[0].signers = ['root2']; }), 'keys of root version 1')] };
cases['root-rotation-own-threshold-not-met'] = { description: 'root 3 (threshold 2) signed by one of its keys',
  steps: [fail(withSpec((s) => { rotate(s); s.rotations[1].signers = ['root2']; }), 'its own keys')] };
cases['root-rotation-wrong-version'] = { description: '2.root.json holds version 3',
  steps: [fail(withSpec((s) => { s.rotations = [{ version: 3, signers: ['root1'] }]; }), 'holds version 3')] };

cases['expired-root'] = { description: 'the final root expired', steps: [fail(withSpec((s) => { s.rootExpires = PAST; }), 'root version 1 expired')] };
for (const role of ['timestamp', 'snapshot', 'targets'])
  cases[`expired-${role}`] = { description: `${role} expired (freeze attack)`,
    steps: [fail(withSpec((s) => { s[role].expires = PAST; }), `${role} version 1 expired`)] };

cases['rollback-timestamp'] = { description: 'timestamp 2, then timestamp 1',
  steps: [ok(withSpec((s) => { s.timestamp.version = 2; })), fail(baseSpec(), 'timestamp version 1 is older')] };
cases['rollback-snapshot-version-in-timestamp'] = { description: 'timestamp names snapshot 2, then a newer timestamp names snapshot 1',
  steps: [ok(withSpec((s) => { s.snapshot.version = 2; })), fail(withSpec((s) => { s.timestamp.version = 2; }), 'names snapshot version 1')] };
cases['rollback-targets-version-in-snapshot'] = { description: 'snapshot names targets 2, then a newer snapshot names targets 1',
  steps: [ok(withSpec((s) => { s.targets.version = 2; })),
    fail(withSpec((s) => { s.timestamp.version = 2; s.snapshot.version = 2; }), 'version 1, older than the trusted 2')] };
cases['rollback-snapshot-drops-role'] = { description: 'a newer snapshot no longer lists a delegated role',
  steps: [ok(withSpec((s) => { s.delegated.a = { keys: ['del1'], paths: ['x/*'] }; })),
    fail(withSpec((s) => { s.timestamp.version = 2; s.snapshot.version = 2; }), 'no longer lists')] };
cases['timestamp-same-version-new-content'] = { description: 'timestamp 1 again, now naming snapshot 100: the stored timestamp 1 is kept',
  steps: [ok(baseSpec()), ok(withSpec((s) => { s.timestamp.snapshotVersion = 100; }), { targets: [manifestOk()] })] };
cases['fast-forward-recovery'] = { description: 'timestamp 1000 signed by a compromised key, then the key rotated and timestamp 1',
  steps: [ok(withSpec((s) => { s.timestamp.version = 1000; })),
    ok(withSpec((s) => { s.rotations = [{ roles: { timestamp: { keys: ['ts2'], threshold: 1 } }, signers: ['root1'] }]; }))] };
cases['fast-forward-without-rotation'] = { description: 'timestamp 1000, then timestamp 1 with the same key',
  steps: [ok(withSpec((s) => { s.timestamp.version = 1000; })), fail(baseSpec(), 'older than the trusted version 1000')] };

const reformat = (b) => JSON.stringify(JSON.parse(b), null, 4);
cases['snapshot-hash-mismatch'] = { description: 'the snapshot does not match the hash timestamp gives',
  steps: [fail(withSpec((s) => { s.timestampMeta = (m) => { m['snapshot.json'].hashes.sha256 = sha256('another snapshot'); }; }), 'snapshot (against timestamp): sha256 hash does not match')] };
cases['snapshot-oversize'] = { description: 'snapshot longer than the length timestamp gives',
  steps: [fail(withSpec((s) => { s.after = (out) => { out['snapshot.json'] = reformat(out['snapshot.json']); }; }), 'more than')] };
cases['snapshot-version-mismatch'] = { description: 'timestamp names snapshot 2, the snapshot holds 1',
  steps: [fail(withSpec((s) => { s.timestamp.snapshotVersion = 2; }), 'is not the version 2 that timestamp names')] };
cases['mix-and-match-targets'] = { description: 'snapshot names targets 2, the mirror serves a validly signed targets 1',
  steps: [fail(withSpec((s) => { s.snapshotMeta = (m) => { m['targets.json'].version = 2; }; }), 'targets version 1 is not the version 2 that snapshot names')] };
cases['targets-hash-mismatch'] = { description: 'targets bytes differ from the hash in snapshot',
  steps: [fail(withSpec((s) => { s.snapshotHashes = true; s.snapshotMeta = (m) => { m['targets.json'].hashes.sha256 = sha256('other targets'); }; }), 'targets (against snapshot): sha256 hash does not match')] };
cases['targets-oversize'] = { description: 'targets longer than the length snapshot gives',
  steps: [fail(withSpec((s) => { s.snapshotHashes = true; s.after = (out) => { out['targets.json'] += ' '.repeat(100); }; }), 'more than')] };
cases['timestamp-oversize'] = { description: 'a timestamp over the 16 KiB cap (endless data)',
  steps: [fail(withSpec((s) => { s.after = (out) => { out['timestamp.json'] += ' '.repeat(20000); }; }), 'more than 16384 bytes')] };
cases['snapshot-unknown-hash'] = { description: 'timestamp lists the snapshot with an unknown hash algorithm only',
  steps: [fail(withSpec((s) => { s.timestampMeta = (m) => { m['snapshot.json'].hashes = { 'sha3-999': '00' }; }; }), 'unsupported hash algorithm')] };

// (No `\` or `%` in the path: tuf-js builds URLs with WHATWG URL, which
// turns `\` into `/` in file: URLs; the custom field below carries them.)
const TRICKY = 'channels/\u00fcn\u00efcode "q" b/manifest.json';
cases['canonical-json-tricky'] = { description: 'escapes, control characters, non-ASCII, key order and integers in signed metadata',
  steps: [ok(withSpec((s) => {
    s.files[TRICKY] = 'tricky\n';
    s.edit.targets = (t) => {
      t.targets[TRICKY].custom = { s: 'tab\there \u0001 \u001f "q" \\ \u00e9 \u{1F600} /', n: -12, big: 9007199254740991, z: 0,
        arr: [true, false, null, [], {}], '': 'empty key', B: 1, a: 2, '\u00e9': 3, 'a b': 4 };
    };
  }), { targets: [manifestOk(), { name: TRICKY, expect: 'ok', sha256: sha256('tricky\n') }] })] };

const tamperTarget = (content) => withSpec((s) => { s.targetBytes = { [MANIFEST]: content }; });
cases['target-hash-mismatch'] = { description: 'a target file that does not match its hash',
  steps: [ok(tamperTarget('{"version": 9, "channel": "stable"}\n'), { targets: [{ name: MANIFEST, expect: 'error', error: 'sha256 hash does not match' }] })] };
cases['target-oversize'] = { description: 'a target file longer than its length',
  steps: [ok(tamperTarget(baseSpec().files[MANIFEST] + 'x'.repeat(1000)), { targets: [{ name: MANIFEST, expect: 'error', error: 'more than' }] })] };
cases['target-unknown-hash'] = { description: 'a target listed with an unknown hash algorithm besides sha256',
  steps: [ok(withSpec((s) => { s.edit.targets = (t) => { t.targets[MANIFEST].hashes['sha3-999'] = '00'; }; }),
    { targets: [{ name: MANIFEST, expect: 'error', error: 'unsupported hash algorithm' }] })] };

const twoTimestampKeys = (s) => { s.roles.timestamp = { keys: ['ts1', 'ts2'], threshold: 2 }; };
cases['threshold-not-met'] = { description: 'timestamp threshold 2, signed by one key',
  steps: [fail(withSpec((s) => { twoTimestampKeys(s); s.timestamp.signers = ['ts1']; }), '1 of 2 required signatures')] };
cases['threshold-met'] = { description: 'timestamp threshold 2, signed by both keys', steps: [ok(withSpec(twoTimestampKeys))] };
cases['duplicate-signatures'] = { description: 'timestamp threshold 2, the same key\'s signature listed twice',
  steps: [fail(withSpec((s) => { twoTimestampKeys(s); s.timestamp.signers = ['ts1', 'ts1']; s.modelsRefuse = true; }), 'two signatures by key id')] };
cases['duplicate-signatures-threshold-met'] = { description: 'snapshot threshold 1 met, its signature listed twice: refused all the same',
  steps: [fail(withSpec((s) => { s.snapshot.signers = ['snap1', 'snap1']; s.modelsRefuse = true; }), 'snapshot: two signatures by key id')] };
cases['duplicate-key-ids'] = { description: 'one timestamp key listed under two key ids, threshold 2, signed under both ids',
  peer: 'tuf-js accepts: it counts key ids, berth counts keys',
  steps: [fail(withSpec((s) => {
    s.edit.root1 = (r) => {
      r.keys.alias = keyEntry('ts1');
      r.roles.timestamp = { keyids: [keyId('ts1'), 'alias'], threshold: 2 };
    };
    s.envelope.timestamp = (e) => { e.signatures.push({ keyid: 'alias', sig: e.signatures[0].sig }); };
  }), '1 of 2 required signatures')] };
cases['wrong-signature'] = { description: 'a timestamp signature that does not verify',
  steps: [fail(withSpec((s) => { s.envelope.timestamp = (e) => { e.signatures[0].sig = e.signatures[0].sig.replace(/^../, (x) => (x === '30' ? '31' : '30')); }; }), '0 of 1')] };
cases['signed-by-wrong-key'] = { description: 'timestamp signed by the snapshot key',
  steps: [fail(withSpec((s) => { s.timestamp.signers = ['snap1']; }), '0 of 1')] };

// Consistent, so that both roles' versions of the file are served, each under its hash.
const twoDelegations = (s, a = {}, b = {}) => {
  s.consistent = true;
  s.files = {};
  s.delegated.a = { keys: ['del1'], paths: ['channels/*/manifest.json'], files: { [MANIFEST]: 'from a\n' }, ...a };
  s.delegated.b = { keys: ['del2'], paths: ['channels/*/manifest.json'], files: { [MANIFEST]: 'from b\n' }, ...b };
};
cases['delegation-order'] = { description: 'two roles trusted for the path: the first listed wins',
  steps: [ok(withSpec((s) => twoDelegations(s)), { targets: [manifestOk('from a\n')] })] };
cases['delegation-non-terminating'] = { description: 'the first role lacks the target and does not terminate: the second has it',
  steps: [ok(withSpec((s) => twoDelegations(s, { files: {} })), { targets: [manifestOk('from b\n')] })] };
cases['delegation-terminating'] = { description: 'the first role lacks the target and terminates: not found',
  steps: [ok(withSpec((s) => twoDelegations(s, { files: {}, terminating: true })), { targets: [{ name: MANIFEST, expect: 'missing' }] })] };
cases['delegation-paths-glob'] = { description: '`*` does not match across `/`; `?` matches one character',
  steps: [ok(withSpec((s) => twoDelegations(s, { paths: ['channels/*'] }, { paths: ['channels/st?ble/*.json'] })), { targets: [manifestOk('from b\n')] })] };
cases['delegation-hash-prefix'] = { description: 'a role trusted by path_hash_prefixes',
  steps: [ok(withSpec((s) => twoDelegations(s, { paths: undefined, hashPrefixes: [sha256(MANIFEST).slice(0, 2)] })), { targets: [manifestOk('from a\n')] })] };
cases['delegation-cycle'] = { description: 'a delegates to b, b back to a; the target is in neither',
  steps: [ok(withSpec((s) => {
    s.files = {};
    s.delegated.a = { keys: ['del1'], paths: ['channels/*/manifest.json'] };
    s.delegated.b = { keys: ['del2'], paths: ['channels/*/manifest.json'], parent: 'a',
      delegates: [{ name: 'a', keys: ['del1'], paths: ['channels/*/manifest.json'] }] };
  }), { targets: [{ name: MANIFEST, expect: 'missing' }] })] };
cases['delegation-unusual-role-names'] = { description: 'roles named `../escape`, `?` and `/abs`: percent-encoded in URLs and file names',
  steps: [ok(withSpec((s) => {
    s.files = {};
    s.delegated['../escape'] = { keys: ['del1'], paths: ['channels/*/manifest.json'] };
    s.delegated['?'] = { keys: ['del1'], paths: ['channels/*/manifest.json'] };
    s.delegated['/abs'] = { keys: ['del2'], paths: ['channels/*/manifest.json'], files: { [MANIFEST]: 'from abs\n' } };
  }), { targets: [manifestOk('from abs\n')],
    metadataFiles: ['%2Fabs.json', '%3F.json', '..%2Fescape.json', 'root.json', 'snapshot.json', 'targets.json', 'timestamp.json'] })] };
cases['delegation-bad-signature'] = { description: 'a delegated role signed by a key its delegation does not list',
  steps: [ok(withSpec((s) => twoDelegations(s, { signers: ['del2'] })), { targets: [{ name: MANIFEST, expect: 'error', error: "delegated role `a`: 0 of 1" }] })] };
cases['delegation-too-deep'] = { description: 'a chain of 40 delegations: the walk stops at 32 roles',
  steps: [ok(withSpec((s) => {
    s.files = {};
    for (let i = 0; i < 40; i++)
      s.delegated[`d${i}`] = { keys: ['del1'], paths: ['channels/*/manifest.json'], parent: i ? `d${i - 1}` : 'targets',
        files: i === 39 ? { [MANIFEST]: 'deep\n' } : {} };
  }), { targets: [{ name: MANIFEST, expect: 'missing' }] })] };

/// TAP 15 hash bins: the name of the bin of `target` among 2^bits.
const binOf = (target, bits, prefix) => {
  const n = crypto.createHash('sha256').update(target).digest().readUInt32BE(0) >>> (32 - bits);
  return `${prefix}-${n.toString(16).padStart((2 ** bits - 1).toString(16).length, '0')}`;
};
/// Hash bins under targets: every bin signed (by `signers` where given), `files` in the bin `fileBin` names.
/// (With `onlyBin`, the other bins are left out: a client reads only the one it needs.)
const succinctBins = (s, { bits = 3, files = { [MANIFEST]: 'from a bin\n' }, fileBin, signers = {}, onlyBin } = {}) => {
  s.files = {};
  s.succinct = { bits, prefix: 'bins', keys: ['del1'] };
  for (let i = 0; i < (onlyBin ? 0 : 2 ** bits); i++) {
    const name = `bins-${i.toString(16).padStart((2 ** bits - 1).toString(16).length, '0')}`;
    s.delegated[name] = { bin: true, keys: ['del1'], signers: signers[name], files: {} };
  }
  const name = fileBin || binOf(MANIFEST, bits, 'bins');
  s.delegated[name] = { bin: true, keys: ['del1'], signers: signers[name], files };
};
const otherBin = (bits) => binOf(MANIFEST, bits, 'bins').endsWith('0') ? 'bins-1' : 'bins-0';
cases['succinct-bins'] = { description: 'TAP 15 hash bins (bit_length 3): the target is in the bin its path hash names',
  steps: [ok(withSpec((s) => succinctBins(s)), { targets: [manifestOk('from a bin\n'),
    { name: 'channels/none/manifest.json', expect: 'missing' }] })] };
cases['succinct-bins-one-bit'] = { description: 'hash bins with bit_length 1 (bins-0, bins-1)',
  steps: [ok(withSpec((s) => succinctBins(s, { bits: 1 })), { targets: [manifestOk('from a bin\n')] })] };
const PADDED = 'channels/pad-10/manifest.json';  // its bin of 256 is 0x0a
cases['succinct-bins-padded'] = { description: 'hash bins with bit_length 8: a target in bin `bins-0a`, zero-padded (only that bin written)',
  steps: [ok(withSpec((s) => succinctBins(s, { bits: 8, onlyBin: true, fileBin: binOf(PADDED, 8, 'bins'),
    files: { [PADDED]: 'from a bin\n' } })), { targets: [{ name: PADDED, expect: 'ok', sha256: sha256('from a bin\n') }] })] };
cases['succinct-wrong-bin'] = { description: 'a bin listing a target whose path hash names another bin: not trusted for it',
  steps: [ok(withSpec((s) => succinctBins(s, { fileBin: otherBin(3) })), { targets: [{ name: MANIFEST, expect: 'missing' }] })] };
cases['succinct-bin-bad-signature'] = { description: 'the target\'s bin signed by a key the succinct delegation does not list',
  steps: [ok(withSpec((s) => succinctBins(s, { signers: { [binOf(MANIFEST, 3, 'bins')]: ['del2'] } })),
    { targets: [{ name: MANIFEST, expect: 'error', error: `delegated role \`${binOf(MANIFEST, 3, 'bins')}\`: 0 of 1` }] })] };

// ---- output ----------------------------------------------------------------

// With case names as arguments, only those are written again (ECDSA
// signatures differ at every run: the others stay as committed).
const only = process.argv.slice(2);
for (const name of fs.readdirSync(here)) {
  const p = path.join(here, name);
  if (fs.statSync(p).isDirectory() && (!only.length || only.includes(name))) fs.rmSync(p, { recursive: true });
}
const index = {};
for (const [name, c] of Object.entries(cases)) {
  index[name] = c.description;
  if (only.length && !only.includes(name)) continue;
  const dir = path.join(here, name);
  const steps = c.steps.map((step, i) => {
    const files = writeRepo(step.spec, path.join(dir, `step${i + 1}`));
    if (i === 0) fs.writeFileSync(path.join(dir, 'root.json'), files['1.root.json']);
    const { spec, ...rest } = step;
    return rest;
  });
  fs.writeFileSync(path.join(dir, 'case.json'), JSON.stringify({ description: c.description, ...(c.peer ? { peer: c.peer } : {}), steps }, null, 1) + '\n');
}
fs.writeFileSync(path.join(here, 'cases.json'), JSON.stringify(index, null, 1) + '\n');
console.log(`${Object.keys(cases).length} cases written`);
