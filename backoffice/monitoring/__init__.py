"""What monitoring reads: the scheduled jobs' last runs and the queues and errors the alerts watch."""
