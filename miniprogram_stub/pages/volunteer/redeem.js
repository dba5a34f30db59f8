// 加入志愿服务队: a member of a volunteer team, social organisation or enterprise redeems the
// one-time code the district center gave them (utils/redeem-page.js).
const { definePage } = require('../../utils/page.js');
const { redeemPage } = require('../../utils/redeem-page.js');

definePage(
  redeemPage({
    already: false,
    alreadyOf: (me) => me.role === 'volunteer',
    redeem: (api, code) => api.redeemVolunteerInvitation(code),
    doneTitle: '加入成功',
    methods: {
      report() {
        wx.redirectTo({ url: '/pages/volunteer/report' });
      },
    },
  }),
);
