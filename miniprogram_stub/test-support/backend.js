// Test support: the real backend on free loopback ports, and a `wx` object whose request and
// uploadFile make real HTTP calls to it (Node 20: global fetch, FormData, Blob).

const { spawn, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const zlib = require('node:zlib');

const ROOT = path.resolve(__dirname, '..', '..');
const E_RESCUE = process.env.E_RESCUE_BIN || path.join(ROOT, '.venv', 'bin', 'e-rescue');

function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

async function waitFor(url, { timeoutMs = 120000, proc, logs } = {}) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (proc && proc.exitCode !== null) {
      throw new Error(`${url}: process exited (${proc.exitCode})\n${logs.join('')}`);
    }
    try {
      const res = await fetch(url);
      if (res.status < 500) return;
    } catch (e) {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 150));
  }
  throw new Error(`${url} did not answer within ${timeoutMs} ms\n${(logs || []).join('')}`);
}

function run(args, env) {
  const res = spawnSync(E_RESCUE, args, { env, cwd: env.E_RESCUE_TMP, encoding: 'utf8' });
  if (res.status !== 0) {
    throw new Error(`e-rescue ${args.join(' ')} failed (${res.status}):\n${res.stdout}${res.stderr}`);
  }
  return res.stdout;
}

function start(args, env) {
  const logs = [];
  const proc = spawn(E_RESCUE, args, { env, cwd: env.E_RESCUE_TMP, stdio: ['ignore', 'pipe', 'pipe'] });
  proc.stdout.on('data', (d) => logs.push(d.toString()));
  proc.stderr.on('data', (d) => logs.push(d.toString()));
  return { proc, logs };
}

function stop(proc) {
  return new Promise((resolve) => {
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return resolve();
    const timer = setTimeout(() => proc.kill('SIGKILL'), 5000);
    proc.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    proc.kill('SIGTERM');
  });
}

// The backend as `make run` starts it, on a temporary SQLite database: migrations applied,
// villages loaded from a CSV, the fake WeChat API and the API server on free ports.
async function startBackend({ villages }) {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'e-rescue-mp-'));
  const [wechatPort, apiPort] = [await freePort(), await freePort()];
  const env = Object.assign({}, process.env, {
    E_RESCUE_TMP: tmp,
    APP_ENV: 'development',
    DATABASE_URL: `sqlite:///${path.join(tmp, 'e-rescue.db')}`,
    UPLOAD_DIR: path.join(tmp, 'uploads'),
    WECHAT_API_BASE: `http://127.0.0.1:${wechatPort}/`,
    LOG_LEVEL: 'WARNING',
  });
  fs.mkdirSync(env.UPLOAD_DIR);
  const processes = [];
  const backend = {
    base: `http://127.0.0.1:${apiPort}`,
    wechatBase: `http://127.0.0.1:${wechatPort}`,
    tmp,
    env,
    run: (args) => run(args, env),
    logs: () => processes.map((p) => p.logs.join('')).join('\n'),
    async stop() {
      await Promise.all(processes.map((p) => stop(p.proc)));
      fs.rmSync(tmp, { recursive: true, force: true });
    },
  };
  try {
    run(['db', 'upgrade'], env);
    const csv = path.join(tmp, 'villages.csv');
    fs.writeFileSync(csv, '镇街,村居,编码\n' + villages.map((v) => v.join(',')).join('\n') + '\n');
    run(['load-villages', csv], env);
    const wechat = start(['fake-wechat', '--port', String(wechatPort)], env);
    processes.push(wechat);
    await waitFor(`${backend.wechatBase}/_fake/calls`, wechat);
    const api = start(['serve', '--port', String(apiPort)], env);
    processes.push(api);
    await waitFor(`${backend.base}/healthz`, api);
  } catch (err) {
    await backend.stop();
    throw err;
  }
  return backend;
}

// A `wx` with real HTTP behind request/uploadFile, in-memory storage, and records of what the
// user was shown. It keeps WeChat's rules that tests must not be able to bypass:
// - `requestSubscribeMessage` works only inside a tap handler's own call stack (`__gesture`,
//   raised by test-support/miniprogram.js while a tap handler runs), as "仅在点击行为时调用";
// - `chooseMedia` needs the privacy agreement: until the user agrees, it calls the listener given
//   to `onNeedPrivacyAuthorization` and waits for its `resolve({event: 'agree'})`, or fails;
// - `offline = true` fails every request as a phone without network; `hold()` parks requests
//   until the returned release function is called (to see loading states);
// - `loseNextResponse(pattern)` makes the next matching request reach the server but report a
//   network failure to the caller, as a dropped mobile connection would.
function createWx({ user = 'nina', subscribeAnswer = 'accept', envVersion = 'develop', fontSize = 17 } = {}) {
  const storage = new Map();
  const shown = [];
  const calls = [];
  const losing = [];
  const held = [];
  let holding = false;
  let logins = 0;
  let privacyListener = null;
  let privacyAgreed = false;

  function headersOf(res) {
    const out = {};
    res.headers.forEach((value, key) => {
      out[key] = value;
    });
    return out;
  }

  async function bodyOf(res) {
    const text = await res.text();
    try {
      return JSON.parse(text);
    } catch (e) {
      return text;
    }
  }

  function shouldLose(url) {
    const index = losing.findIndex((pattern) => pattern.test(url));
    if (index < 0) return false;
    losing.splice(index, 1);
    return true;
  }

  function later(run) {
    if (holding) held.push(run);
    else run();
  }

  const wx = {
    shown,
    calls,
    storage,
    offline: false,
    __gesture: 0,
    loseNextResponse(pattern) {
      losing.push(pattern);
    },
    // Park every request from now until the returned function is called.
    hold() {
      holding = true;
      return () => {
        holding = false;
        held.splice(0).forEach((run) => run());
      };
    },
    get privacyAgreed() {
      return privacyAgreed;
    },
    // What tapping a <button open-type="agreePrivacyAuthorization"> does in WeChat.
    __agreePrivacy() {
      privacyAgreed = true;
    },
    login({ success }) {
      logins += 1;
      success({ code: `user-${user}-${logins}`, errMsg: 'login:ok' });
    },
    request({ url, method = 'GET', data, header = {}, success, fail }) {
      const hasBody = method !== 'GET' && data !== undefined && data !== null;
      calls.push({ method, url, header: Object.assign({}, header), data });
      later(() => {
        if (wx.offline) return setTimeout(() => fail({ errMsg: 'request:fail offline' }), 0);
        fetch(url, { method, headers: header, body: hasBody ? JSON.stringify(data) : undefined })
          .then(async (res) => {
            const payload = { statusCode: res.status, data: await bodyOf(res), header: headersOf(res) };
            if (shouldLose(url)) return fail({ errMsg: 'request:fail timeout' });
            success(payload);
          })
          .catch((err) => fail({ errMsg: 'request:fail ' + err.message }));
      });
    },
    uploadFile({ url, filePath, name, header = {}, formData = {}, success, fail }) {
      calls.push({ method: 'UPLOAD', url, header: Object.assign({}, header) });
      later(() => {
        if (wx.offline) return setTimeout(() => fail({ errMsg: 'uploadFile:fail offline' }), 0);
        const form = new FormData();
        Object.keys(formData).forEach((k) => form.append(k, String(formData[k])));
        const bytes = fs.readFileSync(filePath);
        form.append(name, new Blob([bytes]), path.basename(filePath));
        fetch(url, { method: 'POST', headers: header, body: form })
          .then(async (res) => {
            // wx.uploadFile hands over the body as a string.
            const text = await res.text();
            if (shouldLose(url)) return fail({ errMsg: 'uploadFile:fail timeout' });
            success({ statusCode: res.status, data: text });
          })
          .catch((err) => fail({ errMsg: 'uploadFile:fail ' + err.message }));
      });
    },
    requestSubscribeMessage({ tmplIds, success, fail }) {
      if (!wx.__gesture) {
        const res = { errMsg: 'requestSubscribeMessage:fail can only be invoked by user TAP gesture.', errCode: 10005 };
        shown.push({ kind: 'subscribe-refused', tmplIds });
        return setTimeout(() => fail && fail(res), 0);
      }
      shown.push({ kind: 'subscribe', tmplIds });
      const res = { errMsg: 'requestSubscribeMessage:ok' };
      tmplIds.forEach((id) => {
        res[id] = subscribeAnswer;
      });
      return setTimeout(() => success(res), 0);
    },
    onNeedPrivacyAuthorization(listener) {
      privacyListener = listener;
    },
    getPrivacySetting({ success }) {
      setTimeout(() => success({ needAuthorization: !privacyAgreed, privacyContractName: '《博山e救助隐私保护指引》' }), 0);
    },
    openPrivacyContract({ success } = {}) {
      shown.push({ kind: 'privacy-contract' });
      if (success) setTimeout(() => success({}), 0);
    },
    getStorageSync: (key) => (storage.has(key) ? storage.get(key) : ''),
    setStorageSync: (key, value) => storage.set(key, value),
    removeStorageSync: (key) => storage.delete(key),
    clearStorageSync: () => storage.clear(),
    showToast: (opts) => shown.push({ kind: 'toast', text: opts.title }),
    // The modal answers "confirm" unless the test sets `nextModalAnswer = false`.
    nextModalAnswer: true,
    showModal(opts) {
      const confirm = wx.nextModalAnswer;
      wx.nextModalAnswer = true;
      shown.push({ kind: 'modal', title: opts.title, text: opts.content });
      if (opts.success) setTimeout(() => opts.success({ confirm, cancel: !confirm }), 0);
    },
    showLoading: () => {},
    hideLoading: () => {},
    // Pictures the user "chooses" next with wx.chooseMedia (paths of files on disk).
    nextChosenFiles: [],
    chooseMedia(opts) {
      const pick = () => {
        const files = wx.nextChosenFiles.splice(0, opts.count || 9);
        opts.success({ tempFiles: files.map((f) => ({ tempFilePath: f, fileType: 'image' })) });
      };
      if (privacyAgreed) return setTimeout(pick, 0);
      if (!privacyListener) {
        return setTimeout(() => opts.fail({ errMsg: 'chooseMedia:fail privacy permission is not authorized' }), 0);
      }
      shown.push({ kind: 'privacy-needed', referrer: 'chooseMedia' });
      return privacyListener((answer) => {
        if (answer && answer.event === 'agree' && privacyAgreed) return pick();
        return opts.fail({ errMsg: 'chooseMedia:fail privacy permission is not authorized', errno: 104 });
      }, { referrer: 'chooseMedia' });
    },
    getAccountInfoSync: () => ({ miniProgram: { appId: 'wx-test-appid', envVersion, version: '' } }),
    getAppBaseInfo: () => ({ fontSizeSetting: fontSize, SDKVersion: '3.7.0', language: 'zh_CN' }),
    getSystemInfoSync: () => ({ fontSizeSetting: fontSize, SDKVersion: '3.7.0', windowWidth: 375 }),
    makePhoneCall: (opts) => shown.push({ kind: 'call', phone: opts.phoneNumber }),
    openLocation: (opts) => shown.push({ kind: 'location', ...opts }),
    redirectTo: (opts) => shown.push({ kind: 'navigate', how: 'redirectTo', url: opts.url }),
    navigateTo: (opts) => shown.push({ kind: 'navigate', how: 'navigateTo', url: opts.url }),
    reLaunch: (opts) => shown.push({ kind: 'navigate', how: 'reLaunch', url: opts.url }),
    switchTab: (opts) => shown.push({ kind: 'navigate', how: 'switchTab', url: opts.url }),
    navigateBack: () => shown.push({ kind: 'navigate', how: 'navigateBack' }),
    stopPullDownRefresh: () => {},
    setNavigationBarTitle: () => {},
    setTabBarBadge: (opts) => shown.push({ kind: 'badge', text: opts.text }),
    removeTabBarBadge: () => shown.push({ kind: 'badge', text: '' }),
    // The last navigation the page asked for.
    lastNavigation: () => shown.filter((s) => s.kind === 'navigate').pop(),
  };
  return wx;
}

// A small PNG photo (solid colour with a stripe), written to a temporary file like a camera
// picture chosen with wx.chooseMedia.
function writePhoto(dir, { width = 96, height = 64, seed = 1 } = {}) {
  const raw = Buffer.alloc((width * 3 + 1) * height);
  for (let y = 0; y < height; y += 1) {
    const row = y * (width * 3 + 1);
    raw[row] = 0;
    for (let x = 0; x < width; x += 1) {
      const stripe = Math.abs(x - y) < 6;
      raw[row + 1 + x * 3] = stripe ? 255 : (seed * 53) % 256;
      raw[row + 2 + x * 3] = stripe ? 255 : (seed * 97) % 256;
      raw[row + 3 + x * 3] = stripe ? 255 : 120;
    }
  }
  const chunk = (type, data) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(body));
    return Buffer.concat([len, body, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // truecolour
  const png = Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', zlib.deflateSync(raw)),
    chunk('IEND', Buffer.alloc(0)),
  ]);
  const file = path.join(dir, `photo-${seed}.png`);
  fs.writeFileSync(file, png);
  return file;
}

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k += 1) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(buf) {
  let c = 0xffffffff;
  for (let i = 0; i < buf.length; i += 1) c = CRC_TABLE[(c ^ buf[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

// A valid ID number (GB 11643 MOD 11-2 check digit), synthetic.
function idNumber(body = '37030419800101123') {
  const weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
  const sum = body.split('').reduce((acc, d, i) => acc + Number(d) * weights[i], 0);
  return body + '10X98765432'[sum % 11];
}

// The texts of the barcodes in a PNG, read by zxing-cpp (the backend's dev dependency) in the
// project's virtualenv, so a code is judged by a real decoder, not by what we meant to draw.
function decodeCodes(png) {
  const python = path.join(ROOT, '.venv', 'bin', 'python');
  const script = 'import io,sys,zxingcpp;from PIL import Image;' +
    'print("\\n".join(r.text for r in zxingcpp.read_barcodes(Image.open(io.BytesIO(sys.stdin.buffer.read())))))';
  const res = spawnSync(python, ['-c', script], { input: png, encoding: 'utf8' });
  if (res.status !== 0) throw new Error('zxing-cpp failed: ' + res.stderr);
  return res.stdout.split('\n').filter(Boolean);
}

module.exports = { E_RESCUE, ROOT, startBackend, createWx, writePhoto, idNumber, decodeCodes };
