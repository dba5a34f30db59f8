// 我的数据: everything the center keeps about me (GET /api/v1/me/data), shown whole because it is
// mine: the account, each application I filed with its ID and phone numbers, my messages, and the
// leads about me (their status only). Each look is recorded by the server (pii.viewed).
const { definePage } = require('../../utils/page.js');

const ROLE = { resident: '居民', helper: '村居协理员' };
const DELETION = { pending: '注销申请办理中', completed: '已注销', refused: '注销申请未通过' };

function day(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  return d.getFullYear() + '年' + (d.getMonth() + 1) + '月' + d.getDate() + '日';
}

function present(data) {
  return {
    account: {
      id: data.account.id,
      role: ROLE[data.account.role] || data.account.role,
      since: day(data.account.created_at),
      wechat: data.account.wechat_linked ? '已绑定本微信' : '未绑定',
    },
    applications: data.applications.map((a) => ({
      id: a.id,
      number: a.number,
      kind: a.type_label,
      name: a.name,
      idNumber: a.id_number,
      phone: a.phone,
      address: a.address,
      submitted: day(a.submitted_at),
      outcome: a.outcome_label || '',
    })),
    messages: data.messages.map((m, i) => ({ key: i, title: m.title, at: day(m.created_at) })),
    leads: data.leads.map((l) => ({ id: l.id, status: l.status_label, since: day(l.created_at) })),
    deletion: data.deletion_request ? DELETION[data.deletion_request.status] || '' : '',
  };
}

definePage({
  data: { account: null, applications: [], messages: [], leads: [], deletion: '' },

  load() {
    const api = getApp().api;
    return this.withState(() =>
      api
        .ensureLogin()
        .then(() => api.myData())
        .then((data) => this.setData(present(data))),
    );
  },
});
