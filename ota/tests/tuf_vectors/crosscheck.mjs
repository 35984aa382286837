// Runs every case of this folder through tuf-js's client (tuf-js 5.x) and
// through `berth tuf` (the conformance CLI), and checks that both agree with
// the case's expectation: each step's refresh succeeds or is refused, each
// target is downloaded (with the expected sha256), missing or refused. A case
// with a `peer` note is one where tuf-js is known to differ; its tuf-js
// outcome is reported, not required.
//
//   node crosscheck.mjs BERTH_BINARY
//
// Exit 0: all agree; 1: a disagreement; 77: tuf-js is not installed
// (BERTH_TUFJS_DIR, default ~/.cache/berth-tufjs; see docs/tuf.md).
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const tufjsDir = process.env.BERTH_TUFJS_DIR || path.join(os.homedir(), '.cache', 'berth-tufjs');
const berth = process.argv[2];
if (!berth) {
  console.error('usage: node crosscheck.mjs BERTH_BINARY');
  process.exit(2);
}
const require = createRequire(path.join(tufjsDir, 'node_modules', 'noop.js'));
let tufjs, DownloadHTTPError;
try {
  tufjs = require('tuf-js');
  ({ DownloadHTTPError } = require('tuf-js/dist/error'));
} catch (e) {
  console.log(`SKIP: tuf-js is not installed in ${tufjsDir} (npm install --prefix ${tufjsDir} tuf-js@5)`);
  process.exit(77);
}

/// Serves file: URLs to tuf-js, with 404 for a missing file as an HTTP fetcher would.
class FileFetcher extends tufjs.BaseFetcher {
  async fetch(url) {
    // As berth's file fetcher: %2F stays in the name (a role `a/b` is the file `a%2Fb.json`).
    const p = new URL(url).pathname.split(/%2F/i).map(decodeURIComponent).join('%2F');
    if (!fs.existsSync(p)) throw new DownloadHTTPError(`not found: ${url}`, 404);
    return Readable.toWeb(fs.createReadStream(p));
  }
}

const sha256 = (b) => crypto.createHash('sha256').update(b).digest('hex');
const fileUrl = (p) => 'file://' + p.split('/').map(encodeURIComponent).join('/');

/// One step through tuf-js: {refresh: 'ok'|'error', targets: {name: 'ok:<sha>'|'missing'|'error'}, why}
async function tufjsStep(meta, stepDir, targetDir, step) {
  const out = { targets: {} };
  const updater = new tufjs.Updater({
    metadataDir: meta, metadataBaseUrl: fileUrl(path.join(stepDir, 'metadata')),
    targetDir, targetBaseUrl: fileUrl(path.join(stepDir, 'targets')), fetcher: new FileFetcher(),
  });
  try {
    await updater.refresh();
    out.refresh = 'ok';
  } catch (e) {
    out.refresh = 'error';
    out.why = e.message;
    return out;
  }
  for (const t of step.targets || []) {
    try {
      const info = await updater.getTargetInfo(t.name);
      if (!info) { out.targets[t.name] = 'missing'; continue; }
      const file = (await updater.findCachedTarget(info)) || (await updater.downloadTarget(info));
      out.targets[t.name] = 'ok:' + sha256(fs.readFileSync(file));
    } catch (e) {
      out.targets[t.name] = 'error';
    }
  }
  return out;
}

/// The same step through `berth tuf`: refresh, then one download per target.
function berthStep(meta, stepDir, targetDir, step) {
  const out = { targets: {} };
  const run = (args) => spawnSync(berth, ['tuf', '--metadata-dir', meta, '--metadata-url', fileUrl(path.join(stepDir, 'metadata')), ...args], { encoding: 'utf8' });
  const r = run(['refresh']);
  out.refresh = r.status === 0 ? 'ok' : 'error';
  if (r.status !== 0) { out.why = r.stderr.trim(); return out; }
  for (const t of step.targets || []) {
    const d = run(['--target-name', t.name, '--target-dir', targetDir, '--target-base-url', fileUrl(path.join(stepDir, 'targets')), 'download']);
    if (d.status === 0) {
      const f = path.join(targetDir, encodeURIComponent(t.name).replace(/[!'()*]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase()));
      out.targets[t.name] = 'ok:' + sha256(fs.readFileSync(f));
    } else {
      out.targets[t.name] = d.stderr.includes('not found in the repository') ? 'missing' : 'error';
    }
  }
  return out;
}

function expected(step) {
  const out = { refresh: step.expect, targets: {} };
  for (const t of step.targets || []) out.targets[t.name] = t.expect === 'ok' ? 'ok:' + t.sha256 : t.expect;
  return out;
}

const same = (a, b) => a.refresh === b.refresh && JSON.stringify(a.targets) === JSON.stringify(b.targets);
let failures = 0;
const cases = JSON.parse(fs.readFileSync(path.join(here, 'cases.json'), 'utf8'));
for (const name of Object.keys(cases)) {
  const dir = path.join(here, name);
  const spec = JSON.parse(fs.readFileSync(path.join(dir, 'case.json'), 'utf8'));
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-tuf-cross-'));
  const clients = { 'tuf-js': path.join(tmp, 'tufjs'), berth: path.join(tmp, 'berth') };
  for (const m of Object.values(clients)) {
    fs.mkdirSync(path.join(m, 'metadata'), { recursive: true });
    fs.mkdirSync(path.join(m, 'targets'), { recursive: true });
    fs.copyFileSync(path.join(dir, 'root.json'), path.join(m, 'metadata', 'root.json'));
  }
  const lines = [];
  let ok = true;
  for (const [i, step] of spec.steps.entries()) {
    const stepDir = path.join(dir, `step${i + 1}`);
    const want = expected(step);
    const js = await tufjsStep(path.join(clients['tuf-js'], 'metadata'), stepDir, path.join(clients['tuf-js'], 'targets'), step);
    const b = berthStep(path.join(clients.berth, 'metadata'), stepDir, path.join(clients.berth, 'targets'), step);
    if (!same(b, want)) { ok = false; lines.push(`  step ${i + 1}: berth ${JSON.stringify(b)}, expected ${JSON.stringify(want)}`); }
    if (!same(js, want)) {
      if (spec.peer) lines.push(`  step ${i + 1}: tuf-js differs as noted (${spec.peer}): ${JSON.stringify(js)}`);
      else { ok = false; lines.push(`  step ${i + 1}: tuf-js ${JSON.stringify(js)}, expected ${JSON.stringify(want)}`); }
    }
    if (want.refresh === 'error' || js.refresh === 'error' || b.refresh === 'error') break;
  }
  fs.rmSync(tmp, { recursive: true, force: true });
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${name}`);
  for (const l of lines) console.log(l);
  if (!ok) failures++;
}
console.log(failures ? `${failures} case(s) disagree` : 'berth and tuf-js agree on every case');
process.exit(failures ? 1 : 0);
