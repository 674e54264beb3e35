// The practice's clustered version: one worker per CPU with Node's cluster
// module, a worker replaced when it dies. Run by hand with
// `PORT=3101 node app_cluster.js`; deploylab's PM2 cluster runs app.js in
// PM2's cluster mode instead (PM2 is the cluster master then).
const express = require("express");
const cluster = require("cluster");
const totalCPUs = require("os").cpus().length;
const port = process.env.PORT || 3101;

if (cluster.isMaster) {
  console.log(`Number of CPUs is ${totalCPUs}`);
  console.log(`Master ${process.pid} is running`);
  for (let i = 0; i < totalCPUs; i++) {
    cluster.fork();
  }
  cluster.on("exit", (worker) => {
    console.log(`worker ${worker.process.pid} died`);
    console.log("Let's fork another worker!");
    cluster.fork();
  });
} else {
  const app = express();
  console.log(`Worker ${process.pid} started`);
  app.get("/", (req, res) => { res.send("Hello World!"); });
  app.get("/api/:n", function (req, res) {
    let n = parseInt(req.params.n);
    let count = 0;
    if (n > 5000000000) n = 5000000000;
    for (let i = 0; i <= n; i++) { count += i; }
    res.send(`Final count is ${count}`);
  });
  app.listen(port, () => { console.log(`App listening on port ${port}`); });
}
