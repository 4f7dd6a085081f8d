export default {
  "keys.title": "keys",
};
