// What every page shares, mixed into its Page({...}) by `definePage`:
// - `fontSize` for <page-meta> (适老化, utils/elder.js);
// - the loading / error state: `status` is 'loading', 'error' or 'ready'; `errorText` says what
//   went wrong in Chinese; 重试 (`retry`) runs the page's `load()` again (templates/state.wxml);
// - the privacy popup (templates/privacy.wxml): app.js hands WeChat's onNeedPrivacyAuthorization
//   to the page on top, which shows the popup; 同意 is a button with
//   open-type="agreePrivacyAuthorization", so WeChat records the consent, then we resolve.
const { errorText } = require('./api.js');
const { pageFontSize } = require('./elder.js');

const COMMON_DATA = { fontSize: '17px', status: 'loading', errorText: '', privacyAsk: false };

const common = {
  // Run `work()` (a function returning a promise) with the page in its loading state, then
  // ready, or in the error state with the message and 重试.
  withState(work) {
    this.setData({ status: 'loading', errorText: '' });
    return Promise.resolve()
      .then(work)
      .then((value) => {
        this.setData({ status: 'ready' });
        return value;
      })
      .catch((err) => {
        this.setData({ status: 'error', errorText: errorText(err) });
      });
  },

  retry() {
    return this.load ? this.load() : undefined;
  },

  askPrivacy(resolve) {
    this._privacyResolve = resolve;
    this.setData({ privacyAsk: true });
  },

  agreePrivacy() {
    const resolve = this._privacyResolve;
    this._privacyResolve = null;
    this.setData({ privacyAsk: false });
    if (resolve) resolve({ event: 'agree', buttonId: 'privacy-agree' });
  },

  disagreePrivacy() {
    const resolve = this._privacyResolve;
    this._privacyResolve = null;
    this.setData({ privacyAsk: false });
    if (resolve) resolve({ event: 'disagree' });
  },

  openPrivacyContract() {
    if (typeof wx.openPrivacyContract === 'function') wx.openPrivacyContract({});
  },

  openPrivacyPolicy() {
    wx.navigateTo({ url: '/pages/privacy/privacy' });
  },
};

function definePage(definition) {
  const own = Object.assign({}, definition);
  const onLoad = own.onLoad;
  own.data = Object.assign({}, COMMON_DATA, definition.data || {});
  own.onLoad = function onLoadWithCommon(options) {
    this.setData({ fontSize: pageFontSize(wx) });
    if (onLoad) return onLoad.call(this, options || {});
    return this.load ? this.load() : this.setData({ status: 'ready' });
  };
  return Page(Object.assign({}, common, own));
}

module.exports = { definePage, common, COMMON_DATA };
