#!/usr/bin/env node
// Writes the district's appid and API domains into the project before it is opened in WeChat
// DevTools or uploaded:
//   MP_APPID=wx0123456789abcdef MP_API_RELEASE=https://jiuzhu.example.gov.cn \
//   [MP_API_TRIAL=https://...] [MP_API_DEVELOP=http://127.0.0.1:5000] \
//   [MP_LINK_BASE=https://jiuzhu.example.gov.cn/mp/] node scripts/configure.js [--check]
// --check only verifies the files as they are (used before an upload): an appid of WeChat's form
// (never the DevTools "touristappid"), HTTPS API bases for trial and release.
const fs = require('node:fs');
const path = require('node:path');

const ROOT = path.resolve(__dirname, '..');
const PROJECT = path.join(ROOT, 'project.config.json');
const ENV = path.join(ROOT, 'config', 'env.js');
const APPID = /^wx[0-9a-f]{16}$/;

function problems(appid, environments) {
  const out = [];
  if (!APPID.test(appid || '')) out.push(`appid "${appid || ''}" is not a mini-program appid (wx + 16 hex digits)`);
  ['trial', 'release'].forEach((name) => {
    const base = (environments[name] || {}).apiBase || '';
    if (!/^https:\/\/[^/]+/.test(base)) out.push(`${name} apiBase "${base}" must be an https:// domain`);
  });
  return out;
}

function check(root = ROOT) {
  const project = JSON.parse(fs.readFileSync(path.join(root, 'project.config.json'), 'utf8'));
  delete require.cache[path.join(root, 'config', 'env.js')];
  const env = require(path.join(root, 'config', 'env.js'));
  const found = problems(project.appid, env.environments);
  if (project.appid !== env.appid) found.push('project.config.json and config/env.js name different appids');
  return found;
}

function configure(values, root = ROOT) {
  const environments = {
    develop: { apiBase: values.MP_API_DEVELOP || 'http://127.0.0.1:5000', linkBase: values.MP_LINK_BASE || '' },
    trial: { apiBase: values.MP_API_TRIAL || values.MP_API_RELEASE || '', linkBase: values.MP_LINK_BASE || '' },
    release: { apiBase: values.MP_API_RELEASE || '', linkBase: values.MP_LINK_BASE || '' },
  };
  const found = problems(values.MP_APPID, environments);
  if (found.length) return found;
  const projectFile = path.join(root, 'project.config.json');
  const project = JSON.parse(fs.readFileSync(projectFile, 'utf8'));
  project.appid = values.MP_APPID;
  fs.writeFileSync(projectFile, JSON.stringify(project, null, 2) + '\n');
  const text =
    '// Written by scripts/configure.js.\nmodule.exports = ' +
    JSON.stringify({ appid: values.MP_APPID, environments }, null, 2) +
    ';\n';
  fs.writeFileSync(path.join(root, 'config', 'env.js'), text);
  return [];
}

if (require.main === module) {
  const found = process.argv.includes('--check') ? check() : configure(process.env);
  if (found.length) {
    found.forEach((p) => console.error('configure: ' + p));
    process.exit(1);
  }
  console.log(process.argv.includes('--check') ? 'configure: ready to upload' : 'configure: written');
}

module.exports = { check, configure, problems, PROJECT, ENV };
