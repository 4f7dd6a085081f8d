export default {
  "setup.title": "欢迎",
  "setup.intro": "尚未创建管理员。请设置管理员密码，之后用它登录本控制台。",
  "setup.password": "管理员密码",
  "setup.password_hint": "至少 {min} 个字符，且不能与客户端令牌相同。",
  "setup.confirm": "再次输入密码",
  "setup.submit": "创建管理员",
  "setup.too_short": "密码至少需要 {min} 个字符。",
  "setup.mismatch": "两次输入的密码不一致。",
  "setup.done": "管理员已创建，已自动登录。",
  "setup.exists": "管理员密码已设置。",
  "setup.go_login": "前往登录",
  "setup.failed": "初始化失败：{error}",
};
