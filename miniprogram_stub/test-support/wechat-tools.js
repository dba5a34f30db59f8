// WeChat's own tools, from npm: `wcsc` (the WXSS compiler) and `wcc` (the WXML compiler) ship as
// binaries in miniprogram-compiler (a dependency of miniprogram-simulate); the JSON schemas the
// DevTools check app.json, page json, sitemap.json and project.config.json with ship in
// miniprogram-ci (dist/schema/dist/*.js, checked there with the `jsonschema` package).
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const vm = require('node:vm');
const { Validator } = require('jsonschema');

const STUB = path.resolve(__dirname, '..');
const COMPILER = path.dirname(require.resolve('miniprogram-compiler/package.json'));
const PLATFORM = { linux: 'linux', darwin: 'mac', win32: 'windows' }[process.platform];
const EXE = process.platform === 'win32' ? '.exe' : '';
const WCSC = path.join(COMPILER, 'bin', PLATFORM, 'wcsc' + EXE);
const WCC = path.join(COMPILER, 'bin', PLATFORM, 'wcc' + EXE);
const SCHEMAS = path.join(path.dirname(require.resolve('miniprogram-ci/package.json')), 'dist', 'schema', 'dist');

function executable(file) {
  try {
    fs.chmodSync(file, 0o755);
  } catch (e) {
    // read-only install: it was executable already or the spawn says why
  }
  return file;
}

// Compile one WXSS file with wcsc; throws with wcsc's own message when it refuses it. Returns
// the CSS WeChat would put in the page on a 375-px-wide phone (rpx already turned into px).
function compileWxss(file, { width = 375 } = {}) {
  const rel = path.relative(STUB, file);
  const lint = spawnSync(executable(WCSC), ['-lc', rel], { cwd: STUB, encoding: 'utf8' });
  if (lint.status !== 0) throw new Error(`wcsc refused ${rel}: ${lint.stderr || lint.stdout}`);
  const js = spawnSync(WCSC, ['-js', rel], { cwd: STUB, encoding: 'utf8', maxBuffer: 8 << 20 });
  if (js.status !== 0) throw new Error(`wcsc -js failed on ${rel}: ${js.stderr}`);
  const styles = [];
  const fakeDocument = {
    head: { appendChild: (node) => styles.push(node) },
    getElementsByTagName: () => [fakeDocument.head],
    createElement: () => ({ childNodes: [], setAttribute() {}, appendChild(t) { this.childNodes.push(t); } }),
    createTextNode: (text) => ({ nodeValue: text }),
  };
  const window = { screen: { width, height: 812 }, devicePixelRatio: 2 };
  // `%s` stands for the shared stylesheets wcsc -js leaves to the caller: none here.
  vm.runInNewContext(js.stdout.replace(/^%s$/m, ''), { window, document: fakeDocument, navigator: { userAgent: 'Node' } });
  return styles.map((s) => s.childNodes.map((t) => t.nodeValue).join('')).join('\n');
}

// [{selector, property, value}] of a CSS text (flat rules: WXSS has no nesting).
function declarations(css) {
  const out = [];
  const rule = /([^{}]+)\{([^{}]*)\}/g;
  let m;
  while ((m = rule.exec(css.replace(/\/\*[\s\S]*?\*\//g, '')))) {
    const selector = m[1].trim();
    m[2].split(';').forEach((decl) => {
      const at = decl.indexOf(':');
      if (at > 0) out.push({ selector, property: decl.slice(0, at).trim(), value: decl.slice(at + 1).trim() });
    });
  }
  return out;
}

function schema(name) {
  return require(path.join(SCHEMAS, name + '.js'));
}

// Errors of `value` against the DevTools' schema `name` (app, page, sitemap, projectconfig).
// Unknown keys count as errors here too (the DevTools only warn about them).
function validateJson(name, value) {
  return new Validator().validate(value, schema(name)).errors.map((e) => e.stack);
}

// Compile WXML files of `root` with wcc, as miniprogram-simulate does; throws wcc's message.
function compileWxml(root, files) {
  const res = spawnSync(executable(WCC), ['-d', '-cc', '0'].concat(files).concat(['-gn', '$gwx']), {
    cwd: root,
    encoding: 'utf8',
    maxBuffer: 16 << 20,
  });
  if (res.status !== 0) throw new Error(res.stderr || res.stdout);
  return res.stdout;
}

module.exports = { STUB, WCSC, WCC, compileWxss, compileWxml, declarations, validateJson };
