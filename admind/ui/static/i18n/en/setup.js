export default {
  "setup.title": "Welcome",
  "setup.intro": "No admin exists yet. Choose the admin password; you will use it to log in to this console.",
  "setup.password": "Admin password",
  "setup.password_hint": "At least {min} characters, and not one of the client tokens.",
  "setup.confirm": "Repeat the password",
  "setup.submit": "Create admin",
  "setup.too_short": "The password needs at least {min} characters.",
  "setup.mismatch": "The two passwords differ.",
  "setup.done": "Admin created. You are logged in.",
  "setup.exists": "An admin password is already set.",
  "setup.go_login": "Go to log in",
  "setup.failed": "Setup failed: {error}",
};
