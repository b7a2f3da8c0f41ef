"""Tasks (抽查任务), their verifiable target draws and the assignments (派发) that come out of them."""
