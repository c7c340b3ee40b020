"""Write-offs of bad debt (four eyes) and the recoveries received on them afterwards."""
