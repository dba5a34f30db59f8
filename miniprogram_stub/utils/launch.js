// What a page was opened with. Three ways in carry parameters:
// - a plain page path with a query (`pages/apply/apply?village=cd-001`, from inside the app or
//   a subscribe message): `options.village`;
// - a plain QR code of an HTTPS URL under our domain (扫普通链接二维码打开小程序): WeChat opens the
//   page the console maps the URL prefix to, with `options.q` = the whole URL, URI-encoded;
// - a 小程序码 from getwxacodeunlimit: `options.scene` = the ≤ 32-character scene, URI-encoded,
//   which the API resolves (GET /api/v1/launch/<scene>) into the page's parameters.

// The pages the WeChat console maps our link prefixes to (开发管理 → 扫普通链接二维码打开小程序):
// `<MINIPROGRAM_LINK_BASE>apply` → the apply page, `<MINIPROGRAM_LINK_BASE>redeem` → redeem.
const LINK_PAGES = { apply: 'pages/apply/apply', redeem: 'pages/helper/redeem', volunteer: 'pages/volunteer/redeem' };

function decode(value) {
  try {
    return decodeURIComponent(value);
  } catch (e) {
    return value;
  }
}

function queryOf(url) {
  const out = {};
  const at = url.indexOf('?');
  if (at < 0) return out;
  url
    .slice(at + 1)
    .split('#')[0]
    .split('&')
    .filter(Boolean)
    .forEach((pair) => {
      const [key, value = ''] = pair.split('=');
      out[decode(key)] = decode(value.replace(/\+/g, ' '));
    });
  return out;
}

// The page's parameters from `options`: the query itself, merged with the parameters of the
// URL in `q`; `scene` is left for the API to resolve (see `resolveLaunch`).
function launchParams(options) {
  const params = Object.assign({}, options || {});
  if (params.q) Object.assign(params, queryOf(decode(String(params.q))));
  if (params.scene) params.scene = decode(String(params.scene));
  return params;
}

// Parameters with a wxacode's scene resolved through our API (`api.launch(scene)`).
async function resolveLaunch(api, options) {
  const params = launchParams(options);
  if (!params.scene) return params;
  const resolved = await api.launch(params.scene);
  return Object.assign({}, resolved.params, params);
}

module.exports = { LINK_PAGES, launchParams, resolveLaunch, queryOf };
