"""What only matters on AWS: secrets, RDS IAM auth, run launchers, the Lambda handler."""
