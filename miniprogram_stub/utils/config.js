// Settings per environment. WeChat tells the running version with
// wx.getAccountInfoSync().miniProgram.envVersion: 'develop' (DevTools and preview), 'trial'
// (体验版) or 'release' (正式版). Trial and release talk HTTPS to a domain listed in the WeChat
// console (开发管理 → 开发设置 → 服务器域名); scripts/configure.js writes config/env.js.
const settings = require('../config/env.js');

const ENV_VERSIONS = ['develop', 'trial', 'release'];

function envVersion(wx) {
  try {
    const version = wx.getAccountInfoSync().miniProgram.envVersion;
    return ENV_VERSIONS.indexOf(version) >= 0 ? version : 'release';
  } catch (e) {
    return 'release';
  }
}

// {envVersion, apiBase, linkBase, appid}; refuses plain HTTP outside develop, as WeChat does.
function environment(wx, all = settings) {
  const version = envVersion(wx);
  const chosen = all.environments[version] || {};
  const apiBase = String(chosen.apiBase || '').replace(/\/+$/, '');
  if (!apiBase) throw new Error(`config/env.js: no apiBase for ${version} (run scripts/configure.js)`);
  if (version !== 'develop' && !/^https:\/\//.test(apiBase)) {
    throw new Error(`config/env.js: the ${version} apiBase must be https:// (WeChat refuses others)`);
  }
  return { envVersion: version, apiBase, linkBase: chosen.linkBase || '', appid: all.appid };
}

module.exports = { ENV_VERSIONS, envVersion, environment };
