// The practice's Express app (single process). deploylab adds two lines:
// the port comes from PORT (default 3100, clear of deploylab's Go servers on
// 3000/3001) and, under PM2 with wait_ready, the app says it is ready once
// it listens.
const express = require("express");
const app = express();
const port = process.env.PORT || 3100;
app.get("/", (req, res) => { res.send("Hello World!"); });
app.get("/api/:n", function (req, res) {
  let n = parseInt(req.params.n);
  let count = 0;
  if (n > 5000000000) n = 5000000000;
  for (let i = 0; i <= n; i++) { count += i; }
  res.send(`Final count is ${count}`);
});
app.listen(port, () => {
  console.log(`App listening on port ${port}`);
  if (process.send) process.send("ready");
});
