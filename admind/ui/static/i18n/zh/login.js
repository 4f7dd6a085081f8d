export default {
  "login.title": "登录",
  "login.intro": "输入管理员密码以管理密钥、令牌和设置。",
  "login.password": "管理员密码",
  "login.submit": "登录",
  "login.submitting": "正在登录…",
  "login.required": "请输入管理员密码。",
  "login.wrong": "管理员密码错误。",
  "login.throttled": "失败次数过多，请在 {minutes} 分钟后重试。",
  "login.failed": "登录失败：{error}",
  "login.expired": "登录后将回到之前的页面。",
};
