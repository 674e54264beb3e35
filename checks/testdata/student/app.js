// The practice's app without cluster (plain node:http, so the test needs no npm install).
const http = require('http');
const port = process.env.PORT || 3000;

function sum(n) {
  let count = 0;
  if (n > 5000000000) n = 5000000000;
  for (let i = 0; i <= n; i++) count += i;
  return count;
}

const server = http.createServer((req, res) => {
  const m = req.url.match(/^\/api\/([^/?]*)/);
  res.setHeader('Content-Type', 'text/html; charset=utf-8');
  if (req.url === '/') return res.end('Hello World!');
  if (m) return res.end(`Final count is ${sum(parseInt(m[1]))}`);
  res.statusCode = 404;
  res.end('Cannot GET ' + req.url);
});
server.listen(port, '127.0.0.1', () => console.log(`App listening on port ${port}`));
