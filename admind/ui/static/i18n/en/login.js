export default {
  "login.title": "Log in",
  "login.intro": "Enter the admin password to manage keys, tokens and settings.",
  "login.password": "Admin password",
  "login.submit": "Log in",
  "login.submitting": "Logging in…",
  "login.required": "Enter the admin password.",
  "login.wrong": "Wrong admin password.",
  "login.throttled": "Too many failed attempts. Try again in {minutes} min.",
  "login.failed": "Login failed: {error}",
  "login.expired": "Log in to continue where you left off.",
};
