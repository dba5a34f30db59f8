// Runs mini-program pages in Node: `Page(...)` captures the page's definition; an instance gets
// `data` and a `setData` that understands WeChat's paths ("form.name", "household[0].name").

const path = require('node:path');

const STUB = path.resolve(__dirname, '..');

function setPath(target, key, value) {
  const parts = key.replace(/\[(\d+)\]/g, '.$1').split('.');
  let node = target;
  for (let i = 0; i < parts.length - 1; i += 1) {
    if (node[parts[i]] === undefined || node[parts[i]] === null) node[parts[i]] = {};
    node = node[parts[i]];
  }
  node[parts[parts.length - 1]] = value;
}

// Load page `route` (e.g. "pages/apply/apply") with `wx` and an app holding `api`.
function loadPage(route, { wx, app }) {
  let definition = null;
  globalThis.wx = wx;
  globalThis.getApp = () => app;
  globalThis.Page = (def) => {
    definition = def;
  };
  const file = path.join(STUB, route + '.js');
  delete require.cache[require.resolve(file)];
  require(file);
  const page = Object.create(definition);
  page.route = route;
  page.data = JSON.parse(JSON.stringify(definition.data || {}));
  page.setData = (changes) => {
    Object.keys(changes).forEach((key) => setPath(page.data, key, changes[key]));
  };
  return page;
}

// Wait until `predicate()` holds (pages load asynchronously), or fail after `timeoutMs`.
async function until(predicate, { timeoutMs = 5000, what = 'condition' } = {}) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (predicate()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error('timed out waiting for ' + what);
}

module.exports = { loadPage, until, setPath };
