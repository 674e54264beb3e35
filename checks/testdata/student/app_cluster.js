// The practice's app with Node's cluster module: one worker per CPU (WORKERS overrides).
const cluster = require('cluster');
const os = require('os');
const http = require('http');
const port = process.env.PORT || 3000;
const workers = parseInt(process.env.WORKERS) || os.cpus().length;

if (cluster.isPrimary) {
  for (let i = 0; i < workers; i++) cluster.fork();
  cluster.on('exit', () => cluster.fork());
} else {
  const sum = (n) => { let c = 0; for (let i = 0; i <= n; i++) c += i; return c; };
  http.createServer((req, res) => {
    const m = req.url.match(/^\/api\/([^/?]*)/);
    if (req.url === '/') return res.end('Hola Mundo');
    if (m) return res.end(`La suma es ${sum(parseInt(m[1]))}`);
    res.statusCode = 404;
    res.end('no');
  }).listen(port, '127.0.0.1');
}
