-- Queues the reports of executions recorded before the gateway stored reports: the index writer
-- queues a report only when it writes a change to its execution's row, and a finished
-- execution's row does not change again. The same rule as `TaskExecution::report_source` (a
-- STANDARD report whose ReportResult is SUCCESS; the bucket from `arn:aws:s3:::name`, an access
-- point's ARN kept whole; `<subdirectory>/Detailed-Reports/<task-id>/<exec-id>/`), in SQL, once.
INSERT INTO report_ingestions (execution_arn, bucket, prefix)
SELECT execution_arn,
       CASE WHEN bucket_arn LIKE '%:::%' THEN split_part(bucket_arn, ':::', 2) ELSE bucket_arn END,
       CASE WHEN subdirectory = '' THEN '' ELSE subdirectory || '/' END
           || 'Detailed-Reports/' || split_part(execution_arn, '/', 2) || '/' || split_part(execution_arn, '/', 4) || '/'
FROM (
    SELECT execution_arn,
           snapshot -> 'taskReportConfig' -> 'destination' -> 's3' ->> 's3BucketArn' AS bucket_arn,
           rtrim(coalesce(snapshot -> 'taskReportConfig' -> 'destination' -> 's3' ->> 'subdirectory', ''), '/')
               AS subdirectory
    FROM execution_snapshot_documents
    WHERE snapshot -> 'reportResult' ->> 'status' = 'SUCCESS'
      AND snapshot -> 'taskReportConfig' ->> 'outputType' = 'STANDARD'
) reported
WHERE bucket_arn IS NOT NULL
ON CONFLICT (execution_arn) DO NOTHING;
