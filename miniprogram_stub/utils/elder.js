// 适老化: text follows the user's WeChat font setting (设置 → 通用 → 字体大小, and 关怀模式), never
// below 17 px. Every page binds the result to <page-meta root-font-size page-font-size>, and all
// WXSS sizes text in rem, so one setting scales the whole page; secondary text is ≥ 0.9rem
// (≥ 15.3 px). test/static.test.js checks the compiled WXSS for this.
const MIN_BODY_PX = 17;

function fontSizeSetting(wx) {
  try {
    const info = typeof wx.getAppBaseInfo === 'function' ? wx.getAppBaseInfo() : wx.getSystemInfoSync();
    const size = Number(info && info.fontSizeSetting);
    return Number.isFinite(size) && size > 0 ? size : MIN_BODY_PX;
  } catch (e) {
    return MIN_BODY_PX;
  }
}

// The page's root font size, e.g. "17px" (standard) or "22px" (a large WeChat font setting).
function pageFontSize(wx) {
  return Math.max(MIN_BODY_PX, Math.round(fontSizeSetting(wx))) + 'px';
}

module.exports = { MIN_BODY_PX, pageFontSize };
