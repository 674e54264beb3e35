module.exports = {
  apps: [{
    name: 'suma',
    script: './app.js',
    exec_mode: 'cluster',
    instances: 'max',
    env: { PORT: process.env.PM2_TEST_PORT || 3000 },
  }],
};
