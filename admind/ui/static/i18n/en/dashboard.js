export default {
  "dashboard.title": "dashboard",
};
