// What WeChat's own tools say about the project, and the 适老化 rules checked mechanically:
// every WXSS compiles with wcsc and sizes text in rem (following the user's WeChat font setting
// through <page-meta>), body text ≥ 17 px and secondary text ≥ 15 px at the smallest setting;
// app.json, each page's json, sitemap.json and project.config.json validate against the DevTools'
// schemas; no action only by long press; no size="mini" buttons; no touristappid to upload.
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { describe, test } = require('node:test');

const { STUB, compileWxss, compileWxml, declarations, validateJson } = require('../test-support/wechat-tools.js');
const { MIN_BODY_PX } = require('../utils/elder.js');
const { problems, configure, check } = require('../scripts/configure.js');

const APP = JSON.parse(fs.readFileSync(path.join(STUB, 'app.json'), 'utf8'));
const PAGES = APP.pages;
const read = (rel) => fs.readFileSync(path.join(STUB, rel), 'utf8');

// Selectors whose text is secondary (hints, dates, badges); all other text is body text.
const SECONDARY = /(^|[\s,.])(\.muted|\.status|\.badge)\b/;
const SECONDARY_MIN_PX = 15;

function fontSizes(file) {
  return declarations(compileWxss(path.join(STUB, file))).filter((d) => d.property === 'font-size');
}

describe('WXSS, compiled by wcsc', () => {
  const files = ['app.wxss'].concat(PAGES.map((p) => p + '.wxss'));

  for (const file of files) {
    test(`${file}: text is sized in rem, body ≥ ${MIN_BODY_PX}px and secondary ≥ ${SECONDARY_MIN_PX}px`, () => {
      for (const { selector, value } of fontSizes(file)) {
        const m = /^([\d.]+)rem$/.exec(value);
        assert.ok(m, `${file} ${selector} { font-size: ${value} }: only rem follows the WeChat font setting`);
        const px = Number(m[1]) * MIN_BODY_PX;
        const min = SECONDARY.test(selector) ? SECONDARY_MIN_PX : MIN_BODY_PX;
        assert.ok(px >= min, `${file} ${selector}: ${value} = ${px.toFixed(1)}px < ${min}px`);
      }
    });
  }

  test('the page itself is 1rem: the <page-meta> root font size', () => {
    const body = fontSizes('app.wxss').find((d) => d.selector === 'body');
    assert.equal(body && body.value, '1rem');
  });

  test('wcsc refuses broken WXSS (so a pass means something)', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wxss-'));
    const bad = path.join(dir, 'bad.wxss');
    fs.writeFileSync(bad, '.a { font-size: 1rem; color: red');
    const rel = path.relative(STUB, bad);
    assert.throws(() => compileWxss(path.join(STUB, rel)), /wcsc/);
    fs.rmSync(dir, { recursive: true, force: true });
  });
});

describe('WXML', () => {
  const wxml = PAGES.map((p) => [p, read(p + '.wxml')]);

  test('wcc (the official compiler) refuses a missing end tag', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wxml-'));
    fs.writeFileSync(path.join(dir, 'bad.wxml'), '<view><text>未闭合</view>');
    assert.throws(() => compileWxml(dir, ['bad.wxml']));
    fs.writeFileSync(path.join(dir, 'good.wxml'), '<view><text>闭合</text></view>');
    assert.match(compileWxml(dir, ['good.wxml']), /\$gwx/);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  for (const [page, source] of wxml) {
    test(`${page}: <page-meta> first, bound to the font size; loading and error states`, () => {
      const firstNode = source.replace(/<import [^>]*\/>\s*/g, '').trimStart();
      assert.match(firstNode, /^<page-meta id="page-meta" root-font-size="\{\{fontSize\}\}" page-font-size="\{\{fontSize\}\}">/);
      assert.match(source, /<template is="state" data="\{\{status, errorText\}\}" \/>/);
      assert.match(source, /wx:if="\{\{status === 'ready'\}\}"/);
    });

    test(`${page}: no long-press-only action, no size="mini" button`, () => {
      assert.doesNotMatch(source, /\b(bind|catch|capture-bind|capture-catch|mut-bind):?(longpress|longtap)\b/);
      assert.doesNotMatch(source, /size="mini"/);
    });
  }

  test('every page with photos uses the photo template (a visible 删除 on each photo)', () => {
    const photos = read('templates/photos.wxml');
    assert.match(photos, /<button class="btn-plain photo-remove" data-index="\{\{index\}\}" bindtap="removePhoto">删除<\/button>/);
    for (const [page, source] of wxml) {
      if (/addPhotos/.test(source) || /addPhotos/.test(read(page + '.js'))) {
        assert.match(source, /<template is="photos"/, page);
        assert.match(source, /<template is="privacy"/, `${page} asks for the privacy agreement before the picker`);
      }
    }
  });
});

describe('JSON, against the schemas WeChat DevTools ship (miniprogram-ci)', () => {
  test('app.json', () => {
    assert.deepEqual(validateJson('app', APP), []);
    const tabs = APP.tabBar.list.map((t) => [t.pagePath, t.text]);
    assert.deepEqual(tabs, [
      ['pages/index/index', '首页'],
      ['pages/mine/mine', '我的申请'],
      ['pages/messages/messages', '消息'],
      ['pages/me/me', '我的'],
    ]);
  });

  for (const page of PAGES) {
    test(`${page}.json and its files`, () => {
      assert.deepEqual(validateJson('page', JSON.parse(read(page + '.json'))), []);
      ['.js', '.wxml', '.wxss'].forEach((ext) => assert.ok(fs.existsSync(path.join(STUB, page + ext)), page + ext));
    });
  }

  test('sitemap.json and project.config.json', () => {
    assert.deepEqual(validateJson('sitemap', JSON.parse(read('sitemap.json'))), []);
    assert.deepEqual(validateJson('projectconfig', JSON.parse(read('project.config.json'))), []);
  });

  test('a schema error is reported (so a pass means something)', () => {
    assert.notDeepEqual(validateJson('app', { pages: 'pages/index/index' }), []);
  });
});

describe('configuration per environment', () => {
  test('nothing meant for upload names touristappid', () => {
    const files = ['project.config.json', 'app.json', 'app.js', 'config/env.js'];
    files.forEach((f) => assert.doesNotMatch(read(f), /touristappid/, f));
  });

  test('an upload needs a real appid and HTTPS for trial and release', () => {
    assert.deepEqual(
      problems('touristappid', { trial: { apiBase: 'http://x' }, release: { apiBase: '' } }).length,
      3,
    );
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mp-config-'));
    fs.mkdirSync(path.join(dir, 'config'));
    fs.copyFileSync(path.join(STUB, 'project.config.json'), path.join(dir, 'project.config.json'));
    fs.copyFileSync(path.join(STUB, 'config/env.js'), path.join(dir, 'config/env.js'));
    assert.ok(check(dir).length > 0, 'the committed development files are not ready to upload');
    assert.deepEqual(configure({ MP_APPID: 'wx0123456789abcdef', MP_API_RELEASE: 'https://jiuzhu.example.cn' }, dir), []);
    assert.deepEqual(check(dir), []);
    const env = require(path.join(dir, 'config/env.js'));
    assert.equal(env.environments.release.apiBase, 'https://jiuzhu.example.cn');
    assert.deepEqual(validateJson('projectconfig', JSON.parse(fs.readFileSync(path.join(dir, 'project.config.json'), 'utf8'))), []);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('the environment follows envVersion; release refuses plain HTTP', () => {
    const { environment } = require('../utils/config.js');
    const wxOf = (envVersion) => ({ getAccountInfoSync: () => ({ miniProgram: { envVersion } }) });
    const all = {
      appid: 'wx0123456789abcdef',
      environments: {
        develop: { apiBase: 'http://127.0.0.1:5000' },
        trial: { apiBase: 'https://trial.example.cn/' },
        release: { apiBase: 'http://plain.example.cn' },
      },
    };
    assert.equal(environment(wxOf('develop'), all).apiBase, 'http://127.0.0.1:5000');
    assert.equal(environment(wxOf('trial'), all).apiBase, 'https://trial.example.cn');
    assert.throws(() => environment(wxOf('release'), all), /https/);
  });
});
