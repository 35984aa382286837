// tuf-js's client (tuf-js 5.x) on a repository served over HTTP: one
// refresh, then each named target looked up and downloaded. Prints one JSON
// object: {"refresh": "ok" | the error, "<target>": sha256 | "missing" |
// "error: ..."}. Used by fleet_repo_lib.py.
//
//   node fleet_repo_tufjs.mjs METADATA_DIR METADATA_URL TARGET_DIR TARGET_URL [TARGET...]
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';

const tufjsDir = process.env.BERTH_TUFJS_DIR || path.join(os.homedir(), '.cache', 'berth-tufjs');
const require = createRequire(path.join(tufjsDir, 'node_modules', 'noop.js'));
const tufjs = require('tuf-js');

const [metadataDir, metadataBaseUrl, targetDir, targetBaseUrl, ...names] = process.argv.slice(2);
const out = {};
const updater = new tufjs.Updater({ metadataDir, metadataBaseUrl, targetDir, targetBaseUrl });
try {
  await updater.refresh();
  out.refresh = 'ok';
} catch (e) {
  out.refresh = e.message;
}
if (out.refresh === 'ok') {
  for (const name of names) {
    try {
      const info = await updater.getTargetInfo(name);
      if (!info) {
        out[name] = 'missing';
        continue;
      }
      const file = (await updater.findCachedTarget(info)) || (await updater.downloadTarget(info));
      out[name] = crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');
    } catch (e) {
      out[name] = 'error: ' + e.message;
    }
  }
}
console.log(JSON.stringify(out));
