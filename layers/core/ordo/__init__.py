"""ordo: ordered jobs on AWS Lambda, SQS FIFO and DynamoDB."""
