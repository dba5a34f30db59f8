// Runs the mini-program's pages as WeChat would, in Node: every WXML is compiled by WeChat's own
// compiler (`wcc`, shipped in the npm package miniprogram-compiler) and rendered in jsdom by
// miniprogram-simulate with its default `official` compiler; pages are driven through real events
// (tap, input, change, submit) dispatched on the rendered nodes.
//
// The Page shim. miniprogram-simulate renders custom components (`Component({...})`), not pages.
// A page's `Page({data, onLoad, ...handlers})` becomes `Component({data, methods})` with every
// function of the page as a method, which is what WeChat itself does for pages built with
// `Component`; the harness then calls the page lifecycle (onLoad(query) → onShow → onReady) the
// way the framework does on navigation, and sets `route` and `options` on the instance.
//
// "Inside a tap". WeChat lets `wx.requestSubscribeMessage` (and other "仅在点击行为时调用" calls)
// run only in the synchronous call stack of a tap handler. The shim wraps each handler: while a
// handler runs for a `tap` event, `wx.__gesture` is raised; it falls again when the handler
// returns, so anything the handler does after an `await` is outside the tap, as on a phone.

const path = require('node:path');
const { JSDOM } = require('jsdom');

const STUB = path.resolve(__dirname, '..');

const jsdom = new JSDOM('<!doctype html><html><head></head><body></body></html>', {
  pretendToBeVisual: true,
});
// miniprogram-simulate and j-component expect a browser's globals.
['window', 'document', 'navigator', 'CustomEvent', 'Event', 'TouchEvent', 'Element', 'HTMLElement',
  'Node', 'MutationObserver', 'getComputedStyle', 'requestAnimationFrame'].forEach((name) => {
  if (jsdom.window[name] !== undefined) {
    Object.defineProperty(globalThis, name, { value: jsdom.window[name], configurable: true, writable: true });
  }
});
globalThis.window = jsdom.window;

// miniprogram-simulate injects a `wx` mock of its own on load; ours replaces it per page.
const simulate = require('miniprogram-simulate');

const GESTURES = new Set(['tap']);

let currentWx = null;
const pageStack = [];

function withGesture(name, fn) {
  return function gestureAware(...args) {
    const event = args[0];
    const isGesture = event && typeof event === 'object' && GESTURES.has(event.type);
    if (!isGesture || !currentWx) return fn.apply(this, args);
    currentWx.__gesture = (currentWx.__gesture || 0) + 1;
    try {
      return fn.apply(this, args);
    } finally {
      currentWx.__gesture -= 1;
    }
  };
}

// The documented shim: Page({...}) → Component({data, methods}).
globalThis.Page = function Page(definition) {
  const methods = {};
  Object.keys(definition).forEach((key) => {
    if (typeof definition[key] === 'function') methods[key] = withGesture(key, definition[key]);
  });
  globalThis.Component({ data: JSON.parse(JSON.stringify(definition.data || {})), methods });
};
globalThis.getCurrentPages = () => pageStack.slice();

// Open page `route` ("pages/apply/apply") with `query`, as wx.navigateTo would: compiled by wcc,
// rendered, attached, then onLoad(query), onShow() and onReady(). Returns the rendered page
// (a j-component wrapper: .instance is the page's `this`, .data its data).
function openPage(route, query = {}, { wx, app }) {
  currentWx = wx;
  globalThis.wx = wx;
  globalThis.getApp = () => app;
  const id = simulate.load(path.join(STUB, route), { rootPath: STUB });
  const page = simulate.render(id);
  const parent = document.createElement('div');
  document.body.appendChild(parent);
  page.attach(parent);
  const instance = page.instance;
  instance.route = route;
  instance.options = query;
  pageStack.push(instance);
  page.close = () => {
    const at = pageStack.indexOf(instance);
    if (at >= 0) pageStack.splice(at, 1);
    if (instance.onUnload) instance.onUnload();
    page.detach();
  };
  if (instance.onLoad) instance.onLoad(query);
  if (instance.onShow) instance.onShow();
  if (instance.onReady) instance.onReady();
  return page;
}

// All nodes of the page matching `selector`, searching through the page's shadow tree.
function all(page, selector) {
  return page.querySelectorAll(selector);
}

function one(page, selector) {
  const node = page.querySelector(selector);
  if (!node) throw new Error(`${page.instance.route}: nothing matches ${selector}\n${text(page)}`);
  return node;
}

// The page's visible text, whitespace folded (what a person would read).
function text(page) {
  return page.dom.textContent.replace(/\s+/g, ' ').trim();
}

// Let queued events and promise callbacks run (j-component dispatches events in a microtask).
function flush(ms = 0) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function tap(page, selector) {
  one(page, selector).dispatchEvent('tap', { touches: [], changedTouches: [] });
  await flush();
}

async function input(page, selector, value) {
  one(page, selector).dispatchEvent('input', { detail: { value, cursor: String(value).length } });
  await flush();
}

async function change(page, selector, value) {
  one(page, selector).dispatchEvent('change', { detail: { value } });
  await flush();
}

async function submit(page, selector, value = {}) {
  one(page, selector).dispatchEvent('submit', { detail: { value } });
  await flush();
}

// Wait until `predicate()` holds (pages load asynchronously), or fail after `timeoutMs`.
async function until(predicate, { timeoutMs = 8000, what = 'condition', page } = {}) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (predicate()) return;
    await flush(10);
  }
  throw new Error('timed out waiting for ' + what + (page ? '\n' + text(page) : ''));
}

module.exports = { STUB, openPage, all, one, text, tap, input, change, submit, until, flush, simulate };

// Launch app.js as WeChat would (App({...}) captured, onLaunch(options) called) with `wx`, then
// point its API client at the test backend `base` (app.js picks the base from config/env.js by
// envVersion; the test backend runs on a free port).
function launchApp({ wx, base, options = { path: 'pages/index/index', query: {}, scene: 1001 } }) {
  const { createApi } = require('../utils/api.js');
  let app = null;
  globalThis.wx = wx;
  currentWx = wx;
  globalThis.App = (definition) => {
    app = definition;
  };
  globalThis.getApp = () => app;
  const file = path.join(STUB, 'app.js');
  delete require.cache[require.resolve(file)];
  require(file);
  app.onLaunch(options);
  app.api = createApi({ wx, base, retryDelayMs: 20 });
  return app;
}

// Tap the privacy popup's 同意 as a person would: WeChat records the consent for a button with
// open-type="agreePrivacyAuthorization", then fires its bindagreeprivacyauthorization handler.
async function agreePrivacy(page, wx) {
  const button = one(page, '#privacy-agree');
  const openType = attrs(button)['openType'] || attrs(button)['open-type'];
  if (openType !== 'agreePrivacyAuthorization') throw new Error('privacy button without open-type: ' + openType);
  wx.__agreePrivacy();
  button.dispatchEvent('agreeprivacyauthorization', { detail: {} });
  await flush();
}

// A rendered node's attributes as WXML gave them ({name: value}).
function attrs(node) {
  const out = {};
  ((node._exparserNode._vt && node._exparserNode._vt.attrs) || []).forEach((a) => {
    out[a.name] = a.value;
  });
  return out;
}

// Every event binding in the rendered page: [{event, handler}] (to prove no long-press-only use).
function eventBindings(page) {
  const out = [];
  const walk = (node) => {
    if (!node) return;
    const vt = node._vt;
    if (vt && vt.event) Object.keys(vt.event).forEach((event) => out.push({ event, handler: vt.event[event].handler }));
    (node.childNodes || []).forEach(walk);
    if (node.shadowRoot) walk(node.shadowRoot);
  };
  walk(page._exparserNode.shadowRoot);
  return out;
}

Object.assign(module.exports, { launchApp, agreePrivacy, attrs, eventBindings });
