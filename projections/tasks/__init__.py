"""Read model of tasks, draws and assignments."""
